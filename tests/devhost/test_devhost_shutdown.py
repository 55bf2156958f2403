"""Stopping the dev host: Ctrl-C or SIGTERM ends it cleanly, with nothing the app left open reported."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from tests.devhost.conftest import APPS_DIR, start_devhost


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_reports_no_client_session_the_app_left_open(tmp_path: Path, signum: int) -> None:
    app_dir = tmp_path / "app"
    shutil.copytree(APPS_DIR / "sessions", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    host = start_devhost(app_dir, tmp_path / "devhost.log")
    try:
        assert host.call("GET", "/api/call_myself").body == b"pong"  # the app's session is open now
        assert host.process.process is not None
        host.process.process.send_signal(signum)
        assert host.process.process.wait(timeout=30) == 0
    finally:
        host.process.stop()
    log = host.log()
    assert "Executed 'Functions.call_myself' (Succeeded" in log
    assert "Unclosed" not in log  # aiohttp's "Unclosed client session" / "Unclosed connector"
