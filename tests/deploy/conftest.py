"""Fixtures of the deployment checks: the parsed templates, and tools that need the Python 3.13 venv."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.bicep import REPO_ROOT, Template, load

VENV313 = REPO_ROOT / ".venv-py313"
# Child processes get only what they need: no app settings from the developer's shell leak in.
CHILD_ENV_KEYS = ("PATH", "HOME", "LANG", "TMPDIR")


@pytest.fixture(scope="session")
def main_template() -> Template:
    return load("main.bicep")


@pytest.fixture(scope="session")
def app_template() -> Template:
    return load("app.bicep")


def child_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in CHILD_ENV_KEYS if key in os.environ}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture(scope="session")
def python313() -> Path:
    """The Python of .venv-py313, built through its Makefile stamp when missing or out of date."""
    built = subprocess.run(
        ["make", "-s", ".stamps/venv313"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        pytest.fail(
            "Could not build the Python 3.13 venv of tests/deploy (make .stamps/venv313):\n"
            f"{built.stdout}{built.stderr}",
            pytrace=False,
        )
    return VENV313 / "bin" / "python"


@pytest.fixture(scope="session")
def indexed_app(python313: Path) -> dict[str, Any]:
    """What Microsoft's indexer reports for function_app.py (see index_app.py)."""
    script = Path(__file__).with_name("index_app.py")
    done = subprocess.run(
        [str(python313), str(script)],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"the indexer failed on function_app.py:\n{done.stderr}"
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="session")
def doctor_report(
    python313: Path, main_template: Template, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """azure-functions-doctor's full profile on the project, as its JSON report.

    The doctor reads the hosting plan from infra/ but not the Flex runtime version of a .bicep file, so the
    Python version the deployment uses is passed on; otherwise it would judge the Python running it.
    """
    output = tmp_path_factory.mktemp("doctor") / "report.json"
    doctor = python313.with_name("azure-functions-doctor")
    command = [str(doctor), "doctor", "--profile", "full", "--path", str(REPO_ROOT)]
    command += ["--target-python", str(main_template.literal("pythonVersion"))]
    command += ["--format", "json", "--output", str(output)]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert output.exists(), f"azure-functions-doctor wrote no report (exit {done.returncode}):\n{done.stderr}"
    return dict(json.loads(output.read_text(encoding="utf-8")), exit_code=done.returncode)
