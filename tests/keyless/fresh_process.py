"""Run a scenario script in a fresh Python process and read the JSON line it prints last.

A fresh process is how cold start and module imports are observed: nothing the test session already
imported can hide what the scenario itself loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]


def run_scenario(script: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Run `script` from the project root with exactly `env`; its last stdout line, parsed as JSON."""
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=PROJECT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
