"""Dev host start-up: route prefix from host.json, and clear refusals for apps it cannot serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devhost.processes import free_port

if TYPE_CHECKING:
    from tests.devhost.conftest import DevHost


def test_route_prefix_from_host_json_is_used(prefixed_app: DevHost) -> None:
    answer = prefixed_app.call("GET", "/v1/hello")
    assert (answer.status, answer.body) == (200, b"hello from v1")


def test_default_prefix_is_not_served_when_host_json_changes_it(prefixed_app: DevHost) -> None:
    assert prefixed_app.call("GET", "/api/hello").status == 404


def test_listing_shows_urls_with_the_configured_prefix(prefixed_app: DevHost) -> None:
    port = prefixed_app.base_url.rsplit(":", 1)[1]
    assert f"\thello: [GET] http://localhost:{port}/v1/hello\n" in prefixed_app.log()


def run_devhost(app_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run the dev host on an app expected to be refused; it must exit on its own."""
    return subprocess.run(
        [sys.executable, "-m", "devhost", "--port", str(free_port()), "--app-dir", str(app_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def app_with(tmp_path: Path, source: str, local_settings: str | None = None) -> Path:
    (tmp_path / "function_app.py").write_text(source)
    if local_settings is not None:
        (tmp_path / "local.settings.json").write_text(local_settings)
    return tmp_path


HELLO_APP = (
    "import azure.functions as func\n"
    "app = func.FunctionApp()\n"
    "@app.route(route='hello')\n"
    "def hello(req): return 'hi'\n"
)


def test_malformed_local_settings_is_refused_naming_the_file(tmp_path: Path) -> None:
    result = run_devhost(app_with(tmp_path, HELLO_APP, '{"Values": {"A": "1",}}'))
    assert result.returncode == 2
    assert f"{tmp_path / 'local.settings.json'}: not valid JSON" in result.stderr


def test_local_settings_with_non_text_value_is_refused_naming_the_key(tmp_path: Path) -> None:
    result = run_devhost(app_with(tmp_path, HELLO_APP, '{"Values": {"Nested": {"a": 1}}}'))
    assert result.returncode == 2
    assert '"Values"."Nested" must be a string' in result.stderr


def test_encrypted_local_settings_are_refused(tmp_path: Path) -> None:
    result = run_devhost(app_with(tmp_path, HELLO_APP, '{"IsEncrypted": true, "Values": {}}'))
    assert result.returncode == 2
    assert "cannot decrypt" in result.stderr


def test_missing_function_app_is_refused(tmp_path: Path) -> None:
    result = run_devhost(tmp_path)
    assert result.returncode == 2
    assert "no function_app.py" in result.stderr


def test_two_function_apps_in_one_module_are_refused(tmp_path: Path) -> None:
    source = "import azure.functions as func\napp = func.FunctionApp()\nother = func.FunctionApp()\n"
    result = run_devhost(app_with(tmp_path, source))
    assert result.returncode == 2
    assert "expected exactly one FunctionApp" in result.stderr


def test_unsupported_route_template_is_refused_naming_the_function(tmp_path: Path) -> None:
    source = HELLO_APP + "@app.route(route='files/{*rest}/tail')\ndef tail(req): return 'x'\n"
    result = run_devhost(app_with(tmp_path, source))
    assert result.returncode == 2
    assert "function tail:" in result.stderr


def test_function_app_failing_at_import_is_refused_with_its_traceback(tmp_path: Path) -> None:
    result = run_devhost(app_with(tmp_path, "raise RuntimeError('broken at import 5d2b')\n"))
    assert result.returncode == 2
    assert "RuntimeError: broken at import 5d2b" in result.stderr
    assert "function_app.py failed:" in result.stderr
