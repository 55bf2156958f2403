"""Catch-up after a reconnect: the messages stored after a given one, oldest first, paged, on Azurite."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.events.vectors import load
from tests.integration.conftest import FunctionApp
from wps_upstream.payload import Payload
from wps_upstream.store import MessageStore, pages
from wps_upstream.store.errors import UnknownMessage

HUB = "chat"
T0 = datetime(2026, 11, 29, 6, 7, 8, tzinfo=UTC)


@pytest.fixture(params=[1, 3], ids=["one-partition", "three-partitions"])
async def store(request: pytest.FixtureRequest, azurite: Any) -> AsyncIterator[MessageStore]:
    async with MessageStore.from_connection_string(
        azurite.connection_string, table_name="catchup" + uuid.uuid4().hex[:16], partitions=request.param
    ) as opened:
        yield opened


async def append_texts(store: MessageStore, count: int, start: datetime = T0) -> list[str]:
    ids = []
    for index in range(count):
        message, _ = await store.append(
            hub=HUB,
            connection_id=f"conn-{index % 3}",
            event_id=str(index),
            user_id="ann",
            payload=Payload.decode("text", f"m{index}".encode()),
            received_at=start + timedelta(milliseconds=10 * index),
        )
        ids.append(message.id)
    return ids


async def catch_up(store: MessageStore, after: str, limit: int) -> list[str]:
    """Every text after `after`, following `next` page by page."""
    texts: list[str] = []
    following: str | None = after
    while following is not None:
        messages, following = await store.newer_than(hub=HUB, message_id=following, limit=limit)
        texts += [message.payload.value for message in messages]
    return texts


async def test_messages_after_one_come_oldest_first(store: MessageStore) -> None:
    ids = await append_texts(store, 6)
    messages, following = await store.newer_than(hub=HUB, message_id=ids[2], limit=50)
    assert [m.payload.value for m in messages] == ["m3", "m4", "m5"]
    assert following is None


async def test_catch_up_pages_with_next_and_misses_nothing(store: MessageStore) -> None:
    ids = await append_texts(store, 12)
    first, following = await store.newer_than(hub=HUB, message_id=ids[0], limit=4)
    assert [m.payload.value for m in first] == ["m1", "m2", "m3", "m4"]
    assert following == first[-1].id
    assert await catch_up(store, ids[0], limit=4) == [f"m{i}" for i in range(1, 12)]


async def test_nothing_newer_is_an_empty_page(store: MessageStore) -> None:
    ids = await append_texts(store, 2)
    assert await store.newer_than(hub=HUB, message_id=ids[-1], limit=10) == ([], None)


async def test_a_long_backlog_is_found_through_time_windows(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small scan limit makes 30 messages a long backlog: the window search is what finds the oldest end.
    monkeypatch.setattr(pages, "SCAN_LIMIT", 5)
    ids = await append_texts(store, 30)
    messages, following = await store.newer_than(hub=HUB, message_id=ids[3], limit=3)
    assert [m.payload.value for m in messages] == ["m4", "m5", "m6"]
    assert following is not None
    assert await catch_up(store, ids[3], limit=3) == [f"m{i}" for i in range(4, 30)]


@pytest.mark.parametrize("message_id", ["", "abc", "0" * 19 + "zzzzzzzz", "1" * 200])
async def test_a_malformed_id_is_refused(store: MessageStore, message_id: str) -> None:
    with pytest.raises(UnknownMessage, match="not a message id"):
        await store.newer_than(hub=HUB, message_id=message_id, limit=10)


async def test_an_id_of_no_stored_message_is_refused(store: MessageStore) -> None:
    ids = await append_texts(store, 1)
    unknown = ids[0][:-1] + ("0" if ids[0][-1] != "0" else "1")
    with pytest.raises(UnknownMessage, match="names no stored message"):
        await store.newer_than(hub=HUB, message_id=unknown, limit=10)


# --- through /api/messages ----------------------------------------------------------------------------


async def send_text(app: FunctionApp, text: str) -> str:
    vector = load("message-text").for_connection(f"conn-{uuid.uuid4().hex[:8]}").with_body(text.encode())
    response = await app.event(vector)
    assert response.status_code == 200
    return str(json.loads(response.get_body())["id"])


async def test_after_returns_what_was_missed_oldest_first(app: FunctionApp) -> None:
    seen = await send_text(app, "seen")
    for text in ("one", "two", "three"):
        await send_text(app, text)
    page = json.loads((await app.messages(after=seen, limit="2")).get_body())
    assert [m["data"] for m in page["messages"]] == ["one", "two"]
    rest = json.loads((await app.messages(after=page["next"], limit="2")).get_body())
    assert ([m["data"] for m in rest["messages"]], rest["next"]) == (["three"], None)


async def test_after_an_unknown_id_is_a_clear_400(app: FunctionApp) -> None:
    response = await app.messages(after="not-an-id")
    assert response.status_code == 400
    assert b"after=" in response.get_body()


async def test_before_and_after_together_are_refused(app: FunctionApp) -> None:
    seen = await send_text(app, "x")
    response = await app.messages(after=seen, before="1.x")
    assert response.status_code == 400
    assert b"not both" in response.get_body()
