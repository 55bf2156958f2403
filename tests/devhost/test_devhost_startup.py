"""Dev host start-up: route prefix from host.json, and clear refusals for apps it cannot serve."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devhost.__main__ import missing_settings_note
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


def run_devhost(app_dir: Path, port: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the dev host on an app expected to be refused; it must exit on its own."""
    return subprocess.run(
        [sys.executable, "-m", "devhost", "--port", str(port or free_port()), "--app-dir", str(app_dir)],
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


def timer_app(schedule: str) -> str:
    return (
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        f"@app.timer_trigger(schedule={schedule!r}, arg_name='timer')\n"
        "def tick(timer): pass\n"
    )


def test_timer_schedule_setting_that_is_not_set_is_refused_naming_it(tmp_path: Path) -> None:
    result = run_devhost(app_with(tmp_path, timer_app("%DEVHOST_FIXTURE_UNSET_SCHEDULE%")))
    assert result.returncode == 2
    assert (
        "function tick: schedule '%DEVHOST_FIXTURE_UNSET_SCHEDULE%': app setting "
        "'DEVHOST_FIXTURE_UNSET_SCHEDULE' (used as %DEVHOST_FIXTURE_UNSET_SCHEDULE%) is not set"
    ) in result.stderr


def test_invalid_timer_schedule_is_refused_naming_the_function_and_the_problem(tmp_path: Path) -> None:
    result = run_devhost(app_with(tmp_path, timer_app("*/5 * * * *")))
    assert result.returncode == 2
    assert "function tick: schedule '*/5 * * * *' is not valid: '*/5 * * * *' has 5 fields" in result.stderr


def test_invalid_timer_schedule_from_a_setting_names_the_setting(tmp_path: Path) -> None:
    settings = '{"Values": {"TickSchedule": "every minute"}}'
    result = run_devhost(app_with(tmp_path, timer_app("%TickSchedule%"), settings))
    assert result.returncode == 2
    assert "schedule 'every minute' (from app setting TickSchedule) is not valid" in result.stderr


def test_taken_port_is_refused_in_one_line_naming_it_its_process_and_the_way_out(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_devhost(app_with(tmp_path, HELLO_APP), port=port)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"python -m devhost: port {port} is already in use by pid {os.getpid()} ("
    )
    assert "Stop that process, or pick another port: python -m devhost --port " in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback


def test_missing_local_settings_is_said_at_start_with_the_file_looked_for(prefixed_app: DevHost) -> None:
    expected = (
        f"No {prefixed_app.app_dir / 'local.settings.json'}: app settings come only from the environment."
    )
    assert expected in prefixed_app.log()


def test_missing_local_settings_note_shows_how_to_copy_the_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "local.settings.json.example").write_text('{"Values": {}}')
    monkeypatch.chdir(tmp_path)
    note = missing_settings_note(tmp_path)
    assert note.endswith("To start from the example: cp local.settings.json.example local.settings.json")


def test_missing_local_settings_note_for_another_folder_says_where_to_copy(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json.example").write_text('{"Values": {}}')
    note = missing_settings_note(tmp_path)
    assert note.endswith(f"cd {tmp_path} && cp local.settings.json.example local.settings.json")


def help_text(*command: str) -> str:
    return subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60, check=True).stdout


def test_help_names_the_module_when_run_with_python_m() -> None:
    assert help_text(sys.executable, "-m", "devhost").startswith("usage: python -m devhost ")


def test_help_names_the_console_script_when_run_as_functions_devhost() -> None:
    script = Path(sys.executable).parent / "functions-devhost"
    assert script.exists(), "the console script is installed by `pip install -e .` (make setup)"
    assert help_text(str(script)).startswith("usage: functions-devhost ")


def test_stack_help_names_its_module() -> None:
    assert help_text(sys.executable, "-m", "devhost.stack").startswith("usage: python -m devhost.stack ")
