"""A restarted function host loses no acknowledged message, and the chat works again afterwards.

Runs last in this folder (file order): it restarts the function host of the shared stack.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from azure.messaging.webpubsubclient.aio import WebPubSubClient
from azure.messaging.webpubsubclient.models import (
    CallbackType,
    SendMessageError,
    WebPubSubDataType,
    WebPubSubProtocolType,
)
from chat_app import ChatApp, Frame, Inbox, is_send_reply, python_client, unique_user

from devhost.stack import LocalStack

pytestmark = pytest.mark.e2e

BEFORE_RESTART = 5
BUSY_SENDERS = 3
DURING_RESTART_MAX = 30  # per sender; with /api/messages?limit=200 at the end, all are in one page


def replies(frames: list[Frame]) -> list[Frame]:
    return [frame for frame in frames if is_send_reply(frame)]


@dataclass
class Sender:
    """One Python client that sends `message` events and learns the stored id of each acknowledged one."""

    app: ChatApp
    user_id: str
    client: WebPubSubClient = field(init=False)
    inbox: Inbox = field(default_factory=Inbox)

    def __post_init__(self) -> None:
        self.client = python_client(self.app, self.user_id, WebPubSubProtocolType.JSON)

    async def open(self) -> None:
        await self.client.subscribe(CallbackType.SERVER_MESSAGE, self.inbox.receive)
        await self.client.open()

    async def send(self, text: str) -> str:
        """Send `text`; once acknowledged, the stored id the app answered with."""
        replies_before = replies(self.inbox.frames)
        await self.client.send_event("message", text, WebPubSubDataType.TEXT)  # returns once acknowledged
        await self.inbox.wait_until(lambda frames: len(replies(frames)) > len(replies_before))
        answered = replies(self.inbox.frames)
        assert len(answered) == len(replies_before) + 1, f"one reply per acknowledged send, got {answered}"
        return str(answered[-1]["id"])


@dataclass
class RestartStory:
    """What happened around one restart: stored ids, acknowledged texts, and the history read back."""

    before_restart: list[str]
    listed_after_restart: list[str]
    acknowledged_during_restart: list[str]
    sent_on_open_connection: str
    sent_by_new_client: str
    listed_at_the_end: list[Frame]


async def send_until_done(sender: Sender, restart: asyncio.Future[None]) -> list[str]:
    """Send one message after another while the function host restarts; the texts that were acknowledged.

    A send the service refuses or never acknowledges (the host is down) is not counted; the client's
    own retries may still get it through, and then it counts.
    """
    acknowledged: list[str] = []
    for n in range(DURING_RESTART_MAX):
        if restart.done():
            break
        text = f"during restart #{n} by {sender.user_id}"
        try:
            await sender.client.send_event("message", text, WebPubSubDataType.TEXT)
        except SendMessageError:
            continue
        acknowledged.append(text)
        await asyncio.sleep(0.05)
    return acknowledged


async def restart_story(app: ChatApp, stack: LocalStack) -> RestartStory:
    early, late = Sender(app, unique_user("restart-a")), Sender(app, unique_user("restart-b"))
    # Several connections keep sending, so that some events are in flight when the host goes down.
    busy = [Sender(app, unique_user("restart-busy")) for _ in range(BUSY_SENDERS)]
    await early.open()
    for sender in busy:
        await sender.open()
    try:
        before = [await early.send(f"before restart #{n}") for n in range(BEFORE_RESTART)]
        restart = asyncio.ensure_future(asyncio.to_thread(stack.restart_function_host))
        sent = await asyncio.gather(*(send_until_done(sender, restart) for sender in busy))
        during = [text for texts in sent for text in texts]
        await restart
        listed = [message["id"] for message in await app.history_async(early.user_id)]
        on_open_connection = await early.send("after restart, same connection")
        await late.open()
        try:
            by_new_client = await late.send("after restart, new client")
        finally:
            await late.client.close()
    finally:
        for sender in [early, *busy]:
            await sender.client.close()
    at_the_end = await app.history_async(early.user_id, limit=200)
    return RestartStory(before, listed, during, on_open_connection, by_new_client, at_the_end)


@pytest.fixture(scope="module")
def story(chat_app: ChatApp, stack: LocalStack) -> RestartStory:
    return asyncio.run(restart_story(chat_app, stack))


def test_acknowledged_messages_are_listed_after_a_function_host_restart(story: RestartStory) -> None:
    assert len(story.before_restart) == BEFORE_RESTART
    assert set(story.before_restart) <= set(story.listed_after_restart)


def test_messages_acknowledged_while_the_host_restarts_are_listed(story: RestartStory) -> None:
    # The stack's history is shared with other tests, whose messages may be JSON or binary.
    listed_texts = {message["data"] for message in story.listed_at_the_end if message["dataType"] == "text"}
    assert story.acknowledged_during_restart, "no send was acknowledged around the restart"
    assert set(story.acknowledged_during_restart) <= listed_texts


def test_an_open_connection_sends_again_after_the_restart(story: RestartStory) -> None:
    assert story.sent_on_open_connection in {message["id"] for message in story.listed_at_the_end}


def test_a_new_client_negotiates_and_sends_after_the_restart(story: RestartStory) -> None:
    assert story.sent_by_new_client in {message["id"] for message in story.listed_at_the_end}
