"""Dev host processes for the tests: the fixture apps served by `python -m devhost` on free ports."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devhost.processes import PROJECT_ROOT, ManagedProcess, free_port, python_module_argv
from tests.constants import HUB, table_connection_string, web_pubsub_connection_string

APPS_DIR = Path(__file__).resolve().parent / "apps"
RUN_BODY = b'{"input": ""}'  # what Core Tools' docs send to run a non-HTTP function


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class DevHost:
    base_url: str
    app_dir: Path
    process: ManagedProcess

    def call(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> Answer:
        """One HTTP request with exactly these headers (repeats allowed) and body."""
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        try:
            connection.putrequest(method, path)
            for name, value in headers:
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return Answer(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.05)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The runs a fixture timer app recorded (one JSON object per line), oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@dataclass(frozen=True)
class TimerApp:
    """The `timers` fixture app served by a dev host, and the file its functions record their runs in."""

    host: DevHost
    record_path: Path

    def records(self, function: str, event: str = "start") -> list[dict[str, Any]]:
        return [
            r for r in read_records(self.record_path) if r["function"] == function and r["event"] == event
        ]

    def run(
        self, name: str, body: bytes = b'{"input": ""}', content_type: str = "application/json"
    ) -> Answer:
        """POST /admin/functions/<name>, as Core Tools' docs show it."""
        return self.host.call("POST", f"/admin/functions/{name}", [("Content-Type", content_type)], body)


def start_devhost(app_dir: Path, log_path: Path, env: Mapping[str, str] | None = None) -> DevHost:
    """`python -m devhost` serving app_dir on a free port; waits until it answers."""
    port = free_port()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = ManagedProcess(
        f"devhost {app_dir.name}",
        python_module_argv("devhost", "--host", "127.0.0.1", "--port", str(port), "--app-dir", str(app_dir)),
        log_path,
        env=environment,
    ).start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        process.wait_for_http(base_url + "/", timeout=30)
    except Exception:
        process.stop()
        raise
    return DevHost(base_url, app_dir, process)


@pytest.fixture(scope="module")
def basic_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    """The `basic` fixture app, copied next to a local.settings.json, with one of its values preset."""
    app_dir = tmp_path_factory.mktemp("basic") / "app"
    shutil.copytree(APPS_DIR / "basic", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (app_dir / "local.settings.json").write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {
                    "FUNCTIONS_WORKER_RUNTIME": "python",
                    "DEVHOST_FIXTURE_FROM_FILE": "from the file",
                    "DEVHOST_FIXTURE_PRESET": "from the file",
                    "DEVHOST_FIXTURE_NUMBER": 42,
                },
            }
        )
    )
    host = start_devhost(
        app_dir,
        app_dir.parent / "devhost.log",
        env={"DEVHOST_FIXTURE_PRESET": "from the environment"},
    )
    yield host
    host.process.stop()


@pytest.fixture(scope="module")
def prefixed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    """The `prefixed` fixture app (host.json routePrefix "v1"), without a local.settings.json."""
    app_dir = tmp_path_factory.mktemp("prefixed") / "app"
    shutil.copytree(APPS_DIR / "prefixed", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    host = start_devhost(app_dir, app_dir.parent / "devhost.log")
    yield host
    host.process.stop()


@pytest.fixture(scope="module")
def project_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    """The real app with settings in the environment; the page needs neither storage nor the service."""
    unused = free_port()  # nothing listens here: serving the page must not call a dependency
    env = {
        "WebPubSubConnectionString": web_pubsub_connection_string(f"http://127.0.0.1:{unused}"),
        "AzureWebJobsStorage": table_connection_string(unused),
        "WebPubSubHub": HUB,
        "NegotiateAllowQueryUserId": "true",
    }
    host = start_devhost(PROJECT_ROOT, tmp_path_factory.mktemp("project") / "devhost.log", env=env)
    yield host
    host.process.stop()


@pytest.fixture(scope="module")
def timers_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimerApp]:
    """The `timers` fixture app; its ticker's schedule comes from local.settings.json as %Setting%."""
    app_dir = tmp_path_factory.mktemp("timers") / "app"
    shutil.copytree(APPS_DIR / "timers", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (app_dir / "local.settings.json").write_text(
        json.dumps({"Values": {"DEVHOST_FIXTURE_TICKER_SCHEDULE": "* * * * * *"}})
    )
    record_path = app_dir.parent / "runs.jsonl"
    host = start_devhost(
        app_dir, app_dir.parent / "devhost.log", env={"DEVHOST_TIMER_RECORD": str(record_path)}
    )
    yield TimerApp(host, record_path)
    host.process.stop()
