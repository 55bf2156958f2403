"""Presence per user through the whole stack, seen by Microsoft's Python client and /api/presence:
one user on two connections, events that arrive out of order, and reconciliation of a row for a
connection the service does not know, run through the host's admin route."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubProtocolType
from chat_app import ChatApp, Frame, Inbox, Webhook, is_presence, python_client, unique_user

from devhost.stack import LocalStack

pytestmark = pytest.mark.e2e


@dataclass
class TwoConnections:
    """One user opens two connections and closes them one by one; a watcher sees the notices."""

    user_id: str
    watcher: str
    seen: list[Frame] = field(default_factory=list)
    online_with_both: dict[str, int] = field(default_factory=dict)
    online_with_one: dict[str, int] = field(default_factory=dict)
    online_with_none: dict[str, int] = field(default_factory=dict)

    def notice(self, event: str, nth: int) -> Frame:
        """The `nth` (1-based) `event` notice about the user that the watcher received."""
        found = [frame for frame in self.seen if is_presence(frame, event, self.user_id)]
        assert len(found) >= nth, f"the watcher saw {found}"
        return found[nth - 1]


async def open_and_close_two(app: ChatApp) -> TwoConnections:
    story = TwoConnections(unique_user("two"), unique_user("watcher"))
    inbox = Inbox()
    watcher = python_client(app, story.watcher, WebPubSubProtocolType.JSON)
    first = python_client(app, story.user_id, WebPubSubProtocolType.JSON)
    second = python_client(app, story.user_id, WebPubSubProtocolType.JSON_RELIABLE)
    await watcher.subscribe(CallbackType.SERVER_MESSAGE, inbox.receive)

    def count(event: str, n: int) -> Callable[[list[Frame]], bool]:
        return lambda frames: sum(is_presence(f, event, story.user_id) for f in frames) >= n

    async with watcher:
        await first.open()
        await inbox.wait_until(count("connected", 1))
        await second.open()
        await inbox.wait_until(count("connected", 2))
        story.online_with_both = await app.online_async(story.watcher)
        await second.close()
        await inbox.wait_until(count("disconnected", 1))
        story.online_with_one = await app.online_async(story.watcher)
        await first.close()
        await inbox.wait_until(count("disconnected", 2))
        story.online_with_none = await app.online_async(story.watcher)
    story.seen = inbox.frames
    return story


@pytest.fixture(scope="module")
def two(chat_app: ChatApp) -> TwoConnections:
    return asyncio.run(open_and_close_two(chat_app))


def test_the_first_connection_of_a_user_says_online(two: TwoConnections) -> None:
    assert two.notice("connected", 1)["user"] == "online"


def test_the_second_connection_of_a_user_says_it_did_not_change_who_is_online(two: TwoConnections) -> None:
    # "online" again is a permitted duplicate (clients treat the notices as set operations); "offline"
    # would be wrong.
    assert two.notice("connected", 2)["user"] in {"unchanged", "online"}


def test_presence_lists_a_user_with_two_connections_once(two: TwoConnections) -> None:
    assert two.online_with_both.get(two.user_id) == 2


def test_closing_one_of_two_connections_leaves_the_user_online(two: TwoConnections) -> None:
    assert two.notice("disconnected", 1)["user"] == "unchanged"
    assert two.online_with_one.get(two.user_id) == 1


def test_closing_the_last_connection_says_offline(two: TwoConnections) -> None:
    assert two.notice("disconnected", 2)["user"] == "offline"
    assert two.user_id not in two.online_with_none


@pytest.fixture(scope="module")
def webhook(stack: LocalStack) -> Webhook:
    return Webhook(stack.upstream_url, stack.emulator_endpoint)


def test_a_connected_event_that_arrives_after_its_disconnected_leaves_no_one_online(
    chat_app: ChatApp, webhook: Webhook
) -> None:
    # The service retries events, so a connection's `connected` can reach the app after its `disconnected`.
    user_id, connection_id = unique_user("overtaken"), f"overtaken-{uuid.uuid4().hex}"
    assert webhook.system_event("disconnected", connection_id, user_id, {"reason": "gone"}) == 200
    assert webhook.system_event("connected", connection_id, user_id, {}) == 200
    assert user_id not in chat_app.online(user_id)


@dataclass
class Reconciliation:
    listed_before: dict[str, int]
    listed_after: dict[str, int]
    notice: Frame


async def reconcile_a_ghost(app: ChatApp, webhook: Webhook) -> Reconciliation:
    """A presence row for a connection the emulator never had (as a lost `disconnected` leaves one),
    then the reconciliation timer, run now through the admin route."""
    ghost, watcher_id = unique_user("ghost"), unique_user("watcher")
    connection_id = f"ghost-{uuid.uuid4().hex}"
    inbox = Inbox()
    watcher = python_client(app, watcher_id, WebPubSubProtocolType.JSON)
    await watcher.subscribe(CallbackType.SERVER_MESSAGE, inbox.receive)
    async with watcher:
        assert await asyncio.to_thread(webhook.system_event, "connected", connection_id, ghost, {}) == 200
        listed_before = await app.online_async(watcher_id)
        await asyncio.to_thread(app.run_timer, "reconcile_presence")
        notice = await inbox.wait_for(lambda frame: is_presence(frame, "disconnected", ghost))
    return Reconciliation(listed_before, await app.online_async(watcher_id), notice)


@pytest.fixture(scope="module")
def reconciliation(chat_app: ChatApp, webhook: Webhook) -> Reconciliation:
    return asyncio.run(reconcile_a_ghost(chat_app, webhook))


def test_reconciliation_removes_a_connection_the_service_does_not_know(
    reconciliation: Reconciliation,
) -> None:
    ghost = reconciliation.notice["userId"]
    assert reconciliation.listed_before.get(ghost) == 1
    assert ghost not in reconciliation.listed_after


def test_reconciliation_announces_the_removed_connection_as_disconnected(
    reconciliation: Reconciliation,
) -> None:
    assert reconciliation.notice["reason"] == "reconciled"
    assert reconciliation.notice["user"] == "offline"
    assert reconciliation.notice["connectionId"].startswith("ghost-")
