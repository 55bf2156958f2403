"""A fake of the Web PubSub REST API that accepts only Entra bearer tokens, served over TLS.

It stands where the service is when the app runs keyless (`WebPubSubEndpoint`): a real HTTPS server on
127.0.0.1 (free port, a thread) that checks each call's `Authorization: Bearer` token against the local
issuer's keys (RS256, audience `https://webpubsub.azure.com`, the tenant's v1 issuer), records the call,
and answers as the service does: 202 for sends, 200 `{"token": ...}` for `:generateToken`, 401 for a
missing or bad token.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from devhost.processes import free_port
from tests.keyless.local_issuer import LocalIssuer
from tests.keyless.tls import TlsFiles

WEB_PUBSUB_AUDIENCE = "https://webpubsub.azure.com"


@dataclass(frozen=True)
class AuthorizedCall:
    method: str
    path: str
    query: dict[str, list[str]]
    claims: dict[str, Any]  # of the bearer token that authorized the call
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeEntraRestApi:
    """Records the REST calls whose bearer token the local issuer signed; refuses the others with 401."""

    def __init__(self, issuer: LocalIssuer, tls: TlsFiles) -> None:
        self.issuer = issuer
        self.port = free_port()
        self.calls: list[AuthorizedCall] = []
        self.refused: list[str] = []  # why each refused call was refused
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.server_certificate, tls.server_key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-rest", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> FakeEntraRestApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.refused.clear()

    def sends(self) -> list[AuthorizedCall]:
        with self._lock:
            return [call for call in self.calls if call.path.endswith("/:send")]

    def claims_of(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of a bearer token; raises jwt.PyJWTError or ValueError when it is not valid."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            raise ValueError("no bearer token")
        keys = {key.kid: key.private_key.public_key() for key in self.issuer.published}
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in keys:
            raise ValueError(f"unknown key {kid}")
        return dict(
            jwt.decode(
                token,
                keys[kid],
                algorithms=["RS256"],
                audience=WEB_PUBSUB_AUDIENCE,
                issuer=self.issuer.v1_issuer,
            )
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                try:
                    claims = api.claims_of(self.headers.get("Authorization"))
                except (jwt.PyJWTError, ValueError) as error:
                    with api._lock:
                        api.refused.append(f"{self.command} {url.path}: {error}")
                    self._send(401, b"")
                    return
                with api._lock:
                    api.calls.append(
                        AuthorizedCall(self.command, url.path, parse_qs(url.query), claims, body)
                    )
                if url.path.endswith("/:generateToken"):
                    token = jwt.encode(
                        {"sub": parse_qs(url.query).get("userId", [""])[0]},
                        "a client token key of the fake REST API, 32+ bytes",
                    )
                    self._send(200, json.dumps({"token": token}).encode(), "application/json")
                elif self.command == "POST" and url.path.endswith("/:send"):
                    self._send(202, b"")
                else:
                    self._send(200, b"")

            def _send(self, status: int, body: bytes, content_type: str | None = None) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # calls are in api.calls and api.refused

        return Handler
