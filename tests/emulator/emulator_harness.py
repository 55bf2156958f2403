"""Test harness for the emulator: the emulator as a real process, and a recording test upstream.

The test upstream is a real aiohttp server on its own thread and loop (so that every test, whatever
its event loop, can use it). It checks every CloudEvents header of every request as the protocol
reference describes, records what it saw, and answers according to simple scripted rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import queue
import re
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from azure.messaging.webpubsubclient import WebPubSubClient, WebPubSubClientCredential
from azure.messaging.webpubsubclient.models import CallbackType
from azure.messaging.webpubsubservice import WebPubSubServiceClient

from devhost.processes import ManagedProcess, free_port, python_module_argv
from tests.constants import ACCESS_KEY, web_pubsub_connection_string
from tests.keyless.tls import TlsFiles

WAIT = 10.0  # seconds a client may take to see an effect; a deadline, not a measurement
_CE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SYSTEM_EVENTS = {"connect", "connected", "disconnected"}


@dataclass
class Recorded:
    """One request the test upstream received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    problems: list[str] = field(default_factory=list)

    @property
    def event(self) -> str:
        return self.headers.get("ce-eventname", "")

    @property
    def connection_id(self) -> str:
        return self.headers.get("ce-connectionid", "")

    def json(self) -> Any:
        return json.loads(self.body)


class TestUpstream:
    """A recording, header-checking event handler. Routes:

    - `/events/{hub}/{event}`: the normal handler (abuse protection by OPTIONS).
    - `/getonly/{hub}/{event}`: OPTIONS is 404, GET answers abuse protection.
    - `/wrongorigin/{hub}/{event}`: abuse protection allows another origin only.

    Behaviour is chosen by the event: connect reads the client's query (`reject=<status>`,
    `userId=`, `groups=a,b`, `roles=r1,r2`, `subprotocol=`, `state=`), user events by name:
    `echo` (same body and content type back), `fail` (500), `refuse` (400), `flaky` (500 on the first
    attempt of each ce-id, then echo), `nocontent` (204), `slow` (204 after 3 s), `badtype` (200
    application/xml), `state` (sets and echoes `ce-connectionState`). The `message` event of simple
    clients echoes.
    """

    __test__ = False  # not a test class

    def __init__(self, access_key: str = ACCESS_KEY) -> None:
        self.access_key = access_key
        self.port = free_port()
        self.origin = ""  # expected WebHook-Request-Origin, set once the emulator's is known
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, str], int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="test-upstream", daemon=True)
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> TestUpstream:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test upstream did not start")
        return self

    def stop(self) -> None:
        async def cleanup() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{kind}/{hub}/{event}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    # --- queries ---------------------------------------------------------------------------------
    def of(self, connection_id: str, event: str | None = None, method: str = "POST") -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method
                and r.connection_id == connection_id
                and (event is None or r.event == event)
            ]

    def wait_for(self, predicate: Callable[[Recorded], bool], timeout: float = 10.0) -> Recorded:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for r in self.requests:
                    if predicate(r):
                        return r
            time.sleep(0.02)
        raise AssertionError(f"the test upstream saw no such request; it saw {self.summary()}")

    async def await_for(self, predicate: Callable[[Recorded], bool], wait: float = 10.0) -> Recorded:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                for r in self.requests:
                    if predicate(r):
                        return r
            await asyncio.sleep(0.02)
        raise AssertionError(f"the test upstream saw no such request; it saw {self.summary()}")

    def summary(self) -> list[str]:
        with self._lock:
            return [f"{r.method} {r.path} {r.event} {r.connection_id}" for r in self.requests[-20:]]

    # --- the handler -----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        kind, hub, event = request.match_info["kind"], request.match_info["hub"], request.match_info["event"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = Recorded(request.method, request.path, headers, body)
        with self._lock:
            self.requests.append(recorded)
        if request.method in ("OPTIONS", "GET"):
            return self._validation(request, recorded, kind, event)
        recorded.problems = self._check(headers, hub, event)
        return await self._answer(recorded, headers, event)

    def _validation(self, request: web.Request, recorded: Recorded, kind: str, event: str) -> web.Response:
        origin = request.headers.get("WebHook-Request-Origin", "")
        if event != "validate":
            recorded.problems.append(f"validation URL should end in /validate, not /{event}")
        if origin != self.origin:
            recorded.problems.append(f"WebHook-Request-Origin {origin!r} != {self.origin!r}")
        if request.headers.get("ce-awpsversion") != "1.0":
            recorded.problems.append("validation without ce-awpsversion: 1.0")
        if kind == "getonly" and request.method == "OPTIONS":
            return web.Response(status=404)
        allowed = "someone-else.example.com" if kind == "wrongorigin" else origin
        return web.Response(status=200, headers={"WebHook-Allowed-Origin": allowed})

    def _check(self, headers: dict[str, str], hub: str, event: str) -> list[str]:
        problems = []

        def expect(name: str, value: str) -> None:
            if headers.get(name) != value:
                problems.append(f"{name}: {headers.get(name)!r} != {value!r}")

        conn = headers.get("ce-connectionid", "")
        expect("webhook-request-origin", self.origin)
        expect("ce-specversion", "1.0")
        expect("ce-awpsversion", "1.0")
        expect("ce-hub", hub)
        expect("ce-eventname", event)
        kind = "sys" if event in SYSTEM_EVENTS else "user"
        expect("ce-type", f"azure.webpubsub.{kind}.{event}")
        expect("ce-source", f"/hubs/{hub}/client/{conn}")
        digest = hmac.new(self.access_key.encode(), conn.encode(), hashlib.sha256).hexdigest()
        expect("ce-signature", f"sha256={digest}")
        if not conn:
            problems.append("ce-connectionId missing")
        if not _CE_TIME.match(headers.get("ce-time", "")):
            problems.append(f"ce-time {headers.get('ce-time')!r} is not yyyy-MM-ddTHH:mm:ssZ")
        if not headers.get("ce-id", "").isdigit():
            problems.append(f"ce-id {headers.get('ce-id')!r} is not an integer")
        if event == "connect" and headers.get("ce-id") != "0":
            problems.append("connect must have ce-id 0")
        if "ce-userid" in headers and not headers["ce-userid"]:
            problems.append("ce-userId present but empty")
        if kind == "sys" and not headers.get("content-type", "").startswith("application/json"):
            problems.append(f"system event content type {headers.get('content-type')!r}")
        return problems

    async def _answer(self, recorded: Recorded, headers: dict[str, str], event: str) -> web.StreamResponse:
        if event == "connect":
            return self._connect(recorded)
        if event in ("connected", "disconnected"):
            return web.Response(status=200)
        if event == "slow":
            await asyncio.sleep(3)  # longer than the emulator's upstream timeout in these tests
            return web.Response(status=204)
        if event == "flaky" and self._first_attempt(recorded, headers):
            return web.Response(status=500, text="first attempt fails")
        answer = _ANSWERS.get(event, _no_content)
        return answer(recorded, headers)

    def _first_attempt(self, recorded: Recorded, headers: dict[str, str]) -> bool:
        key = (recorded.connection_id, headers.get("ce-id", ""))
        with self._lock:
            self._attempts[key] = self._attempts.get(key, 0) + 1
            return self._attempts[key] == 1

    def _connect(self, recorded: Recorded) -> web.Response:
        body = recorded.json()
        query = {k: v[0] for k, v in body.get("query", {}).items()}
        if "reject" in query:
            return web.Response(status=int(query["reject"]), text="rejected by the test upstream")
        reply: dict[str, Any] = {}
        if "userId" in query:
            reply["userId"] = query["userId"]
        if "groups" in query:
            reply["groups"] = query["groups"].split(",")
        if "roles" in query:
            reply["roles"] = [r for r in query["roles"].split(",") if r]
        if "subprotocol" in query:
            reply["subprotocol"] = query["subprotocol"]
        headers = {"ce-connectionState": query["state"]} if "state" in query else {}
        if not reply:
            return web.Response(status=204, headers=headers)
        return web.json_response(reply, headers=headers)


def _echo(recorded: Recorded, headers: dict[str, str]) -> web.Response:
    content_type = headers.get("content-type", "application/octet-stream")
    return web.Response(status=200, body=recorded.body, headers={"Content-Type": content_type})


def _no_content(recorded: Recorded, headers: dict[str, str]) -> web.Response:
    return web.Response(status=204)


def _state(recorded: Recorded, headers: dict[str, str]) -> web.Response:
    """Answer with the previous state as text and make the request body the new state."""
    new_state = {"ce-connectionState": recorded.body.decode()}
    previous = headers.get("ce-connectionstate", "")
    return web.Response(status=200, text=previous, headers={"Content-Type": "text/plain", **new_state})


_ANSWERS: dict[str, Callable[[Recorded, dict[str, str]], web.Response]] = {
    "echo": _echo,
    "message": _echo,
    "flaky": _echo,  # after its first attempt
    "fail": lambda *_: web.Response(status=500, text="failing on purpose"),
    "refuse": lambda *_: web.Response(status=400, text="refused by the test upstream"),
    "nocontent": _no_content,
    "badtype": lambda *_: web.Response(status=200, body=b"<x/>", headers={"Content-Type": "application/xml"}),
    "state": _state,
}


@dataclass
class Emulator:
    """A running `python -m wps_emulator` process."""

    port: int
    process: ManagedProcess
    access_key: str = ACCESS_KEY

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_endpoint(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        return web_pubsub_connection_string(self.endpoint, self.access_key)

    def service(self, hub: str) -> WebPubSubServiceClient:
        """Microsoft's service SDK for `hub` (tokens and REST)."""
        return WebPubSubServiceClient.from_connection_string(self.connection_string, hub=hub)

    def client_url(self, hub: str, **kwargs: Any) -> str:
        """A client access URL made by Microsoft's SDK (`user_id`, `roles`, `groups`)."""
        return str(self.service(hub).get_client_access_token(**kwargs)["url"])

    def token(
        self, hub: str, *, key: str | None = None, aud: str | None = None, exp_in: int = 3600, **claims: Any
    ) -> str:
        """A hand-made client token, for the refusal cases."""
        now = int(time.time())
        payload = {
            "aud": aud or f"{self.endpoint}/client/hubs/{hub}",
            "iat": now,
            "exp": now + exp_in,
            **claims,
        }
        return jwt.encode(payload, (key or self.access_key).encode(), algorithm="HS256")

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    async def wait_for_log(self, text: str, wait: float = 10.0) -> None:
        """Until the emulator has logged a line containing `text` (it logs each state change)."""
        deadline = time.monotonic() + wait
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"the emulator did not log {text!r}; its log ends {self.log()[-2000:]}")
            await asyncio.sleep(0.02)


@dataclass
class EmulatorRun:
    emulator: Emulator
    upstream: TestUpstream


def start_emulator(log_dir: Path, *hub_args: str, name: str = "emulator") -> Iterator[EmulatorRun]:
    """Start a test upstream and the emulator (with test hooks); `hub_args` may use `{upstream}`."""
    upstream = TestUpstream().start()
    port = free_port()
    upstream.origin = f"127.0.0.1:{port}"
    args = [a.replace("{upstream}", upstream.base) for a in hub_args]
    process = ManagedProcess(
        name,
        python_module_argv(
            "wps_emulator",
            "--port", str(port),
            "--public-endpoint", f"http://127.0.0.1:{port}",
            "--enable-test-hooks",
            *args,
        ),
        log_dir / f"{name}.log",
    )  # fmt: skip
    process.start()
    try:
        process.wait_for_http(f"http://127.0.0.1:{port}/api/health", timeout=30, method="HEAD")
        yield EmulatorRun(Emulator(port, process), upstream)
    finally:
        process.stop()
        upstream.stop()


@dataclass
class TlsEmulator:
    """A running `python -m wps_emulator` that serves https and wss with a test certificate."""

    port: int
    process: ManagedProcess
    tls: TlsFiles

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        return web_pubsub_connection_string(self.endpoint)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the test certificate's authority (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.tls.ca_certificate))

    def log_size(self) -> int:
        """Where the log ends now: `log(since=...)` shows only what comes after."""
        return len(self.log())

    def log(self, since: int = 0) -> str:
        return self.process.log_path.read_text(errors="replace")[since:]


@contextlib.contextmanager
def tls_emulator(log_dir: Path, tls: TlsFiles, *args: str, name: str) -> Iterator[TlsEmulator]:
    """Start the emulator on a free port with TLS (public endpoint https://127.0.0.1:<port>) and `args`."""
    port = free_port()
    process = ManagedProcess(
        name,
        python_module_argv(
            "wps_emulator",
            "--port", str(port),
            "--public-endpoint", f"https://127.0.0.1:{port}",
            "--tls-cert", str(tls.server_certificate),
            "--tls-key", str(tls.server_key),
            *args,
        ),
        log_dir / f"{name}.log",
    )  # fmt: skip
    process.start()
    try:
        process.wait_for_port(port, timeout=30)
        yield TlsEmulator(port, process, tls)
    finally:
        process.stop()


def entra_tls_emulator(
    log_dir: Path, tls: TlsFiles, *, tenant: str, authority: str, name: str
) -> contextlib.AbstractContextManager[TlsEmulator]:
    """The emulator as the service of a keyless app: TLS, and Entra tokens of `tenant` on its REST API."""
    return tls_emulator(log_dir, tls, "--entra-tenant", tenant, "--entra-authority", authority, name=name)


@dataclass
class LiveClient:
    client: WebPubSubClient
    connection_id: str
    inbox: queue.Queue[tuple[str, Any]]
    disconnects: queue.Queue[str | None]

    def next_message(self) -> tuple[str, Any]:
        return self.inbox.get(timeout=WAIT)


@contextlib.contextmanager
def live_client(url: Callable[[], str], **options: Any) -> Iterator[LiveClient]:
    """Microsoft's Python client (`azure-messaging-webpubsubclient`, sync) connected to the emulator,
    recording messages and disconnects.

    Server messages arrive in the inbox as (data type, data), group messages as ("group:data type", data).
    Over wss it trusts what `WEBSOCKET_CLIENT_CA_BUNDLE` names (websocket-client reads it per connection).
    """
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    disconnects: queue.Queue[str | None] = queue.Queue()
    connected: queue.Queue[str] = queue.Queue()
    # open() waits on a condition that on_open may have notified already (a lost wakeup in
    # azure-messaging-webpubsubclient 1.1.0): it then sleeps the whole start_timeout before seeing it
    # is connected. A short start_timeout bounds that stall; a real failure still raises.
    options.setdefault("start_timeout", 5.0)
    client = WebPubSubClient(credential=WebPubSubClientCredential(url), **options)
    client.subscribe(CallbackType.CONNECTED, lambda e: connected.put(e.connection_id))
    client.subscribe(CallbackType.SERVER_MESSAGE, lambda e: inbox.put((str(e.data_type), e.data)))
    client.subscribe(CallbackType.GROUP_MESSAGE, lambda e: inbox.put((f"{e.group}:{e.data_type}", e.data)))
    client.subscribe(CallbackType.DISCONNECTED, lambda e: disconnects.put(e.message))
    client.open()
    try:
        yield LiveClient(client, connected.get(timeout=WAIT), inbox, disconnects)
    finally:
        client.close()


JSON = "json.webpubsub.azure.v1"
RELIABLE = "json.reliable.webpubsub.azure.v1"


class WsClient:
    """A raw WebSocket client (aiohttp) for checking frames exactly."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.connected: dict[str, Any] = {}

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def receive(self, wait: float = 10.0) -> aiohttp.WSMessage:
        return await self.ws.receive(timeout=wait)

    async def next_json(self, wait: float = 10.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=wait)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data!r}"
        return dict(json.loads(msg.data))

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


@contextlib.asynccontextmanager
async def ws_client(url: str, protocol: str | None = JSON, **kwargs: Any) -> AsyncIterator[WsClient]:
    """Open a WebSocket; for JSON protocols, read the `connected` system message first."""
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(url, protocols=(protocol,) if protocol else (), **kwargs)
        client = WsClient(session, ws)
        if protocol:
            client.connected = await client.next_json()
            assert client.connected["event"] == "connected", client.connected
        yield client
        await ws.close()  # a clean close frame, as a well-behaved client ends
    finally:
        await session.close()


async def handshake_status(
    url: str, protocol: str | None = JSON, headers: dict[str, str] | None = None
) -> int:
    """The HTTP status of a refused handshake (101 if it was accepted)."""
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(url, protocols=(protocol,) if protocol else (), headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101
