"""Catch-up with Microsoft's Python client: a client whose connection the reliable protocol cannot
recover reconnects as a new connection, and /api/messages?after=<the last id it saw> gives it exactly
the messages it missed, oldest first, which merge with what it receives live without duplicates.

"Longer than the reliable window": the emulator keeps a dropped reliable connection for 30 s, and that
window is not configurable. Rather than wait 30 s, the service ends the connection through its REST API
(`close_connection`): as after the window, the connection is gone for good, the service closes the
socket with 1008, and the SDK starts a new connection. The test holds that new connection's
negotiation until the other client has finished talking.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubDataType, WebPubSubProtocolType
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient
from chat_app import ChatApp, Frame, Inbox, is_message, python_client, unique_user

from devhost.stack import LocalStack
from tests.constants import HUB

pytestmark = pytest.mark.e2e

MISSED = 5
PAGE = 2  # catch-up page size: five missed messages take three pages


@dataclass
class Absence:
    """What the returning client saw, and what catch-up gave it."""

    first_connection: str
    second_connection: str
    texts: list[str]  # every text the talker sent, in order: one before, MISSED while away, one after
    live: list[Frame]  # messages the returning client received over its sockets
    missed: list[Frame] = field(default_factory=list)  # /api/messages?after= the last id seen live

    @property
    def merged(self) -> list[Frame]:
        """Catch-up first (it ends where the new connection's live messages begin), then live, by id."""
        seen: set[str] = set()
        merged = []
        for message in [*self.missed, *self.live_after_return]:
            if message["id"] not in seen:
                seen.add(message["id"])
                merged.append(message)
        return merged

    @property
    def live_after_return(self) -> list[Frame]:
        return [message for message in self.live if message["data"] != self.texts[0]]


class Gate:
    """Holds the SDK's negotiations while closed; `waiting` is set once one is held."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = asyncio.Event()

    async def __call__(self) -> None:
        if not self.open.is_set():
            self.waiting.set()
            await self.open.wait()


async def away_and_back(app: ChatApp, service_connection_string: str) -> Absence:
    returning, talker = unique_user("returning"), unique_user("talker")
    texts = [f"{talker} #{n}" for n in range(MISSED + 2)]
    gate, inbox = Gate(), Inbox()
    connections: list[str] = []
    reconnected = asyncio.Event()

    async def on_connected(args: object) -> None:
        connections.append(args.connection_id)  # type: ignore[attr-defined]
        if len(connections) == 2:
            reconnected.set()

    # The returning client is on the SDK's default, the reliable protocol.
    reader = python_client(app, returning, WebPubSubProtocolType.JSON_RELIABLE, before_negotiate=gate)
    writer = python_client(app, talker, WebPubSubProtocolType.JSON)
    await reader.subscribe(CallbackType.SERVER_MESSAGE, inbox.receive)
    await reader.subscribe(CallbackType.CONNECTED, on_connected)
    service = WebPubSubServiceClient.from_connection_string(service_connection_string, hub=HUB)
    async with service, reader, writer:
        await writer.send_event("message", texts[0], WebPubSubDataType.TEXT)
        await inbox.wait_for(lambda frame: is_message(frame, talker, texts[0]))
        gate.open.clear()
        await service.close_connection(connections[0], reason="gone for longer than the window")
        await asyncio.wait_for(gate.waiting.wait(), 15)  # the SDK negotiates a new connection
        for text in texts[1:-1]:
            await writer.send_event("message", text, WebPubSubDataType.TEXT)  # returns once acked
        gate.open.set()
        await asyncio.wait_for(reconnected.wait(), 15)
        await writer.send_event("message", texts[-1], WebPubSubDataType.TEXT)
        await inbox.wait_for(lambda frame: is_message(frame, talker, texts[-1]))
    live = [
        frame
        for frame in inbox.frames
        if isinstance(frame, dict) and frame.get("type") == "message" and frame.get("userId") == talker
    ]
    absence = Absence(connections[0], connections[1], texts, live)
    last_seen = next(message["id"] for message in live if message["data"] == texts[0])
    absence.missed = await app.messages_after_async(returning, last_seen, limit=PAGE)
    return absence


@pytest.fixture(scope="module")
def absence(chat_app: ChatApp, stack: LocalStack) -> Absence:
    return asyncio.run(away_and_back(chat_app, stack.emulator_connection_string))


def test_the_client_comes_back_on_a_new_connection(absence: Absence) -> None:
    assert absence.second_connection != absence.first_connection


def test_the_client_received_none_of_the_messages_sent_while_it_was_away(absence: Absence) -> None:
    assert [message["data"] for message in absence.live] == [absence.texts[0], absence.texts[-1]]


def test_catch_up_gives_the_missed_messages_oldest_first(absence: Absence) -> None:
    missed = [message["data"] for message in absence.missed]
    assert missed[:MISSED] == absence.texts[1:-1]


def test_catch_up_and_live_messages_merge_into_each_message_once_in_order(absence: Absence) -> None:
    assert [message["data"] for message in absence.merged] == absence.texts[1:]
