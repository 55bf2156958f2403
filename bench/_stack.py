"""What the app benchmarks share: Azurite and a REST stand-in in their own processes, the app's settings,
and signed events built the way the service sends them.

Every server listens on 127.0.0.1 on a free port and is stopped by its PID when the `Stack` closes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devhost.processes import ManagedProcess, azurite_argv, free_port, table_connection_string  # noqa: E402

KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"  # the local default access key, not a secret
HUB = "chat"
SERVICE_HOST = "bench.webpubsub.azure.com"  # the origin the events claim; the REST calls go to the stand-in
EVENTHANDLER_URL = "http://localhost:7071/api/eventhandler"
JSON_SUBPROTOCOL = "json.webpubsub.azure.v1"


@dataclass(frozen=True)
class Stack:
    """Azurite (Table storage) and the REST stand-in, each in its own process."""

    storage: str  # connection string
    rest_endpoint: str
    azurite: ManagedProcess
    rest: ManagedProcess

    def environment(self, **overrides: str) -> dict[str, str]:
        """The app's settings for this stack (flood control off: the benchmark is the flood)."""
        env = {
            "WebPubSubConnectionString": f"Endpoint={self.rest_endpoint};AccessKey={KEY};Version=1.0;",
            "WebPubSubHub": HUB,
            "WebPubSubAllowedOrigins": SERVICE_HOST,
            "AzureWebJobsStorage": self.storage,
            "MessageRateLimit": "0",
        }
        return env | overrides


@contextmanager
def running_stack() -> Iterator[Stack]:
    """Start Azurite (in memory) and the REST stand-in; stop both on exit."""
    logs = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    table_port, rest_port = free_port(), free_port()
    azurite = ManagedProcess(
        "azurite",
        azurite_argv(blob_port=free_port(), queue_port=free_port(), table_port=table_port),
        logs / "azurite.log",
    ).start()
    rest = ManagedProcess(
        "rest", [sys.executable, str(ROOT / "bench" / "_rest_answerer.py"), str(rest_port)], logs / "rest.log"
    ).start()
    try:
        azurite.wait_for_port(table_port, timeout=60)
        rest.wait_for_port(rest_port)
        yield Stack(table_connection_string(table_port), f"http://127.0.0.1:{rest_port}", azurite, rest)
    finally:
        rest.stop()
        azurite.stop()


@functools.cache
def user_function(name: str) -> Callable[..., Any]:
    """The function `name` of function_app as the Functions host calls it: the user function its index
    yields (not the decorator object, which adds two calls of its own)."""
    import function_app

    for function in function_app.app.get_functions():
        if function.get_function_name() == name:
            return function.get_user_function()
    raise LookupError(f"function_app has no function {name!r}")


def signature(connection_id: str) -> str:
    return "sha256=" + hmac.new(KEY.encode(), connection_id.encode(), hashlib.sha256).hexdigest()


def event_headers(kind: str, connection_id: str, event_id: str, user_id: str) -> dict[str, str]:
    """The headers the service sends with an event (`kind` is the ce-type after `azure.webpubsub.`)."""
    event_name = kind.rsplit(".", 1)[1]
    return {
        "Host": "localhost:7071",
        "Content-Type": "application/json; charset=utf-8",
        "ce-awpsversion": "1.0",
        "ce-specversion": "1.0",
        "WebHook-Request-Origin": SERVICE_HOST,
        "ce-type": f"azure.webpubsub.{kind}",
        "ce-source": f"/hubs/{HUB}/client/{connection_id}",
        "ce-id": event_id,
        "ce-time": "2026-12-03T10:11:12.345Z",
        "ce-hub": HUB,
        "ce-connectionId": connection_id,
        "ce-userId": user_id,
        "ce-eventName": event_name,
        "ce-signature": signature(connection_id),
    }


def connect_event(
    connection_id: str = "Yg1cKbzQ3uVb4vd5b0cSVgjU9YcXfG1x", user_id: str = "ann"
) -> tuple[dict[str, str], bytes]:
    """A connect as the service sends it for a client of /api/negotiate (JSON subprotocol, a display name)."""
    body = {
        "claims": {
            "sub": [user_id],
            "iat": ["1796292000"],
            "exp": ["1796295600"],
            "aud": [f"https://{SERVICE_HOST}/client/hubs/{HUB}"],
        },
        "query": {"access_token": ["REDACTED"], "userName": ["Ann"]},
        "headers": {
            "Sec-WebSocket-Protocol": [JSON_SUBPROTOCOL],
            "Connection": ["Upgrade"],
            "Upgrade": ["websocket"],
        },
        "subprotocols": [JSON_SUBPROTOCOL],
        "clientCertificates": [],
    }
    headers = event_headers("sys.connect", connection_id, "1", user_id)
    return headers, json.dumps(body).encode()


def message_headers(
    connection_id: str, event_id: str, user_id: str, user_name: str = "Ann"
) -> dict[str, str]:
    """A `message` user event in text (the display name in the connection state, as connect put it)."""
    headers = event_headers("user.message", connection_id, event_id, user_id)
    headers["Content-Type"] = "text/plain; charset=utf-8"
    headers["ce-connectionState"] = base64.b64encode(json.dumps({"userName": user_name}).encode()).decode()
    return headers


async def repeat_for(
    seconds: float, concurrency: int, operation: Callable[[int], Callable[[], Awaitable[None]]]
) -> list[float]:
    """`concurrency` workers each repeating their operation until `seconds` have passed; the latencies."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        step = operation(index)
        while time.perf_counter() < stop:
            began = time.perf_counter()
            await step()
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
