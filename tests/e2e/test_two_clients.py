"""Two clients of Microsoft's SDKs (Python and JS) talk through the whole local stack.

Each conversation runs once per module: A connects, B connects, B sends a `message` event, B leaves.
The tests read what the clients saw and what the app stored.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from azure.data.tables.aio import TableClient
from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubDataType, WebPubSubProtocolType
from chat_app import (
    ChatApp,
    Frame,
    Inbox,
    is_message,
    is_presence,
    is_send_reply,
    python_client,
    unique_user,
)

from devhost.stack import LocalStack
from tests.constants import HUB
from wps_upstream.store import MessageStore

pytestmark = pytest.mark.e2e

NODE_SCRIPT = Path(__file__).parent / "js" / "two_clients.mjs"


@dataclass
class Conversation:
    """What the two clients saw: A (`first`) watches, B (`second`) sends `text` and leaves."""

    first: str
    second: str
    text: str
    second_connection_id: str = ""
    first_saw: list[Frame] = field(default_factory=list)
    second_saw: list[Frame] = field(default_factory=list)
    acknowledged: bool = False

    def first_saw_one(self, matches: object) -> Frame:
        found = [frame for frame in self.first_saw if matches(frame)]  # type: ignore[operator]
        assert found, f"{self.first} saw no such frame; it saw {self.first_saw}"
        return found[0]

    @property
    def broadcast(self) -> Frame:
        return self.first_saw_one(lambda frame: is_message(frame, self.second, self.text))

    @property
    def reply(self) -> Frame:
        replies = [frame for frame in self.second_saw if is_send_reply(frame)]
        assert len(replies) == 1, f"{self.second} should get one reply to its one send, got {self.second_saw}"
        return replies[0]


async def python_conversation(app: ChatApp) -> Conversation:
    talk = Conversation(unique_user("py-a"), unique_user("py-b"), "hello from the Python client")
    first_inbox, second_inbox = Inbox(), Inbox()

    # A on the SDK's default (reliable JSON) protocol, B on the plain JSON protocol.
    first = python_client(app, talk.first, WebPubSubProtocolType.JSON_RELIABLE)
    second = python_client(app, talk.second, WebPubSubProtocolType.JSON)
    await first.subscribe(CallbackType.SERVER_MESSAGE, first_inbox.receive)
    await second.subscribe(CallbackType.SERVER_MESSAGE, second_inbox.receive)

    async def remember_connection(args: object) -> None:
        talk.second_connection_id = args.connection_id  # type: ignore[attr-defined]

    await second.subscribe(CallbackType.CONNECTED, remember_connection)
    async with first:
        async with second:
            await first_inbox.wait_for(lambda frame: is_presence(frame, "connected", talk.second))
            await second.send_event("message", talk.text, WebPubSubDataType.TEXT)  # returns once acked
            talk.acknowledged = True
            await second_inbox.wait_for(is_send_reply)
            await first_inbox.wait_for(lambda frame: is_message(frame, talk.second, talk.text))
        await first_inbox.wait_for(lambda frame: is_presence(frame, "disconnected", talk.second))
    talk.first_saw, talk.second_saw = first_inbox.frames, second_inbox.frames
    return talk


def javascript_conversation(app: ChatApp) -> Conversation:
    talk = Conversation(unique_user("js-a"), unique_user("js-b"), "hello from the JS client")
    run = subprocess.run(
        ["node", str(NODE_SCRIPT), app.base_url, talk.first, talk.second, talk.text],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, f"node script failed ({run.returncode}):\n{run.stderr}\n{run.stdout}"
    for line in run.stdout.splitlines():
        seen = json.loads(line)
        if seen["event"] == "connected" and seen["client"] == talk.second:
            talk.second_connection_id = seen["connectionId"]
        elif seen["event"] == "acked":
            talk.acknowledged = True
        elif seen["event"] == "server-message":
            (talk.first_saw if seen["client"] == talk.first else talk.second_saw).append(seen["data"])
    return talk


@pytest.fixture(scope="module", params=["python", "javascript"])
def conversation(request: pytest.FixtureRequest, chat_app: ChatApp) -> Iterator[Conversation]:
    if request.param == "python":
        yield asyncio.run(python_conversation(chat_app))
    else:
        yield javascript_conversation(chat_app)


def test_client_sees_the_other_client_join(conversation: Conversation) -> None:
    presence = conversation.first_saw_one(lambda frame: is_presence(frame, "connected", conversation.second))
    assert presence["connectionId"] == conversation.second_connection_id
    assert presence["time"].endswith("Z")


def test_message_event_is_acknowledged(conversation: Conversation) -> None:
    assert conversation.acknowledged


def test_message_reaches_the_other_client(conversation: Conversation) -> None:
    message = conversation.broadcast
    assert message["dataType"] == "text"
    assert message["connectionId"] == conversation.second_connection_id
    assert isinstance(message["id"], str) and message["time"].endswith("Z")


def test_sender_is_answered_with_the_stored_id(conversation: Conversation) -> None:
    assert conversation.reply["id"] == conversation.broadcast["id"]


def test_message_is_listed_by_the_history_route(conversation: Conversation, chat_app: ChatApp) -> None:
    listed = [
        message
        for message in chat_app.history(conversation.first)
        if message["id"] == conversation.broadcast["id"]
    ]
    assert listed == [conversation.broadcast]


async def test_message_is_in_the_message_store(conversation: Conversation, stack: LocalStack) -> None:
    async with MessageStore.from_connection_string(stack.storage_connection_string) as store:
        messages, _ = await store.page(hub=HUB, limit=100)
    stored = [message for message in messages if message.id == conversation.broadcast["id"]]
    assert len(stored) == 1
    assert (stored[0].user_id, stored[0].payload.data_type, stored[0].payload.data) == (
        conversation.second,
        "text",
        conversation.text.encode(),
    )


async def test_message_is_a_row_of_the_messages_table(conversation: Conversation, stack: LocalStack) -> None:
    # Straight from Table storage, without the app's store code: one row of the hub's partition
    # belongs to the sender, keyed by the message id (layout in docs/store.md).
    async with TableClient.from_connection_string(stack.storage_connection_string, "messages") as table:
        rows = [
            row
            async for row in table.query_entities(
                "PartitionKey eq @hub and userId eq @user",
                parameters={"hub": HUB, "user": conversation.second},
            )
        ]
    assert len(rows) == 1
    assert conversation.broadcast["id"] in rows[0]["RowKey"]


def test_client_sees_the_other_client_leave(conversation: Conversation) -> None:
    presence = conversation.first_saw_one(
        lambda frame: is_presence(frame, "disconnected", conversation.second)
    )
    assert presence["connectionId"] == conversation.second_connection_id
