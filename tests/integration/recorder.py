"""A local stand-in for the Web PubSub REST endpoint: records every call and answers with the exact status
codes azure-messaging-webpubsubservice expects (202 for sends, 200 for PUT/HEAD, 204 for DELETE/close).

It is a real HTTP server on 127.0.0.1 (free port), started once per test session in a thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devhost.processes import free_port


@dataclass(frozen=True)
class RestCall:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RestRecorder:
    """Records REST calls; `fail_with` makes every call answer that status instead (fault injection)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[RestCall] = []
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="rest-recorder", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RestRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
        self.fail_with = None

    def sends(self) -> list[RestCall]:
        """The recorded send calls (POST .../:send), oldest first."""
        with self._lock:
            return [call for call in self.calls if call.method == "POST" and call.path.endswith("/:send")]

    def _record(self, call: RestCall) -> None:
        with self._lock:
            self.calls.append(call)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                recorder._record(
                    RestCall(
                        self.command,
                        url.path,
                        parse_qs(url.query),
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                status = recorder.fail_with or expected_status(self.command, url.path)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet; calls are in recorder.calls

        return Handler


def expected_status(method: str, path: str) -> int:
    """The success status the service SDK accepts for each operation."""
    if method == "POST" and path.endswith("/:send"):
        return 202
    if method == "POST" or method == "DELETE":
        return 204
    return 200
