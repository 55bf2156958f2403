"""JSON that once poisoned the history, sent by a real client through the emulator to the app.

The emulator passes a client's JSON data on as the client wrote it, so these values reach the app's
webhook as they would in Azure; the app refuses each (the client's ack fails), keeps the connection
usable, and the history stays readable as strict JSON. A raw WebSocket client on the JSON subprotocol
writes frames no SDK would produce (`1e400`, 1,000 levels of nesting).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from chat_app import ChatApp, unique_user

from devhost.stack import LocalStack

pytestmark = pytest.mark.e2e

SUBPROTOCOL = "json.webpubsub.azure.v1"
POISON = {  # what the client sends -> what the app says in its log when it refuses it
    "overflowing number": ('{"n":1e400}', "the number 1e400"),
    "lone surrogate": ('"\\ud800"', "a lone surrogate"),
    "1,000 levels of nesting": ("[" * 1000 + "]" * 1000, "deeper than 64 levels"),
}


class RawClient:
    """A WebSocket on the JSON subprotocol that sends frames exactly as written."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, connection_id: str) -> None:
        self.socket = socket
        self.connection_id = connection_id
        self.next_ack = 1

    async def send_json_event(self, data_text: str) -> dict[str, Any]:
        """Send a `message` event whose data is `data_text` verbatim; the ack the service answers."""
        ack_id = self.next_ack
        self.next_ack += 1
        frame = f'{{"type":"event","event":"message","dataType":"json","data":{data_text},"ackId":{ack_id}}}'
        await self.socket.send_str(frame)
        while True:
            message = await self.socket.receive_json(timeout=10)
            if message.get("type") == "ack" and message.get("ackId") == ack_id:
                return dict(message)


@pytest.fixture
async def raw_client(chat_app: ChatApp) -> AsyncIterator[RawClient]:
    url = await chat_app.negotiate_async(unique_user("raw"))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, protocols=(SUBPROTOCOL,)) as socket,
    ):
        connected = await socket.receive_json(timeout=10)
        assert (connected["type"], connected["event"]) == ("system", "connected")
        yield RawClient(socket, connected["connectionId"])


def history_as_a_browser_reads_it(chat_app: ChatApp) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"userId": "reader", "limit": 200})
    with urllib.request.urlopen(f"{chat_app.base_url}/api/messages?{query}", timeout=10) as answer:  # noqa: S310
        raw = answer.read()

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return list(json.loads(raw.decode("utf-8"), parse_constant=refuse)["messages"])


@pytest.mark.parametrize(("data", "reason"), list(POISON.values()), ids=list(POISON))
async def test_poison_json_from_a_client_reaches_the_app_is_refused_and_the_history_stays_readable(
    raw_client: RawClient, chat_app: ChatApp, stack: LocalStack, data: str, reason: str
) -> None:
    refused = await raw_client.send_json_event(data)
    assert refused["success"] is False
    log = stack.log_path("function-host").read_text(encoding="utf-8", errors="replace")
    refusals = [
        line for line in log.splitlines() if raw_client.connection_id in line and "refused with 400" in line
    ]
    assert refusals and reason in refusals[-1]  # the app itself saw the value and said why
    accepted = await raw_client.send_json_event('{"after":"the refused one"}')
    assert accepted["success"] is True  # the connection is still usable
    listed = await asyncio.to_thread(history_as_a_browser_reads_it, chat_app)
    assert {"after": "the refused one"} in [message["data"] for message in listed]
