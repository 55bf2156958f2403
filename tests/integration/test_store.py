"""The message and presence stores against real Table storage (Azurite), each test on its own tables."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import AzureError
from azure.data.tables.aio import TableClient

from devhost.processes import free_port, table_connection_string
from wps_upstream.chat import ChatMessage
from wps_upstream.payload import DataType, Payload
from wps_upstream.store import (
    MAX_MESSAGE_BYTES,
    InvalidCursor,
    MessageStore,
    MessageTooLarge,
    PresenceStore,
    StoreUnavailable,
)

HUB = "chat"
T0 = datetime(2026, 11, 29, 6, 7, 8, 123456, tzinfo=UTC)


def unique_table(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:16]


@pytest.fixture
def connection_string(azurite: Any) -> str:
    return str(azurite.connection_string)


@pytest.fixture
def table_name() -> str:
    return unique_table("msgs")


@pytest.fixture(params=[1, 3], ids=["one-partition", "three-partitions"])
def partitions(request: pytest.FixtureRequest) -> int:
    """Every message test runs with each hub in one partition and spread over three."""
    return int(request.param)


@pytest.fixture
async def store(connection_string: str, table_name: str, partitions: int) -> AsyncIterator[MessageStore]:
    async with MessageStore.from_connection_string(
        connection_string, table_name=table_name, partitions=partitions
    ) as opened:
        yield opened


async def append(
    store: MessageStore,
    *,
    event_id: str = "1",
    connection_id: str = "conn-1",
    data_type: DataType = "text",
    data: bytes = b"hello",
    received_at: datetime = T0,
    hub: str = HUB,
) -> tuple[ChatMessage, bool]:
    return await store.append(
        hub=hub,
        connection_id=connection_id,
        event_id=event_id,
        user_id="alice",
        payload=Payload.decode(data_type, data),
        received_at=received_at,
    )


async def stored_rows(connection_string: str, table_name: str) -> list[dict[str, Any]]:
    """Every row of the table, read with a plain SDK client (message and claim rows alike)."""
    async with TableClient.from_connection_string(connection_string, table_name) as table:
        return [dict(row) async for row in table.list_entities(select=["PartitionKey", "RowKey"])]


async def newest(store: MessageStore, hub: str = HUB) -> ChatMessage:
    messages, _ = await store.page(hub=hub, limit=1)
    return messages[0]


# --- round trips ----------------------------------------------------------------------------------------


async def test_text_message_is_listed_as_it_was_stored(store: MessageStore) -> None:
    message, created = await append(store, data="héllo wörld 😀".encode())
    assert created
    assert await newest(store) == message
    assert message.to_json()["data"] == "héllo wörld 😀"


async def test_json_message_keeps_the_json_text_as_sent(store: MessageStore) -> None:
    sent = b'{ "b": 1,  "a": [true, null, "\xc3\xa9"] }'
    await append(store, data_type="json", data=sent)
    listed = await newest(store)
    assert listed.payload.data == sent
    assert listed.to_json()["data"] == {"b": 1, "a": [True, None, "é"]}


async def test_binary_message_is_byte_identical(store: MessageStore) -> None:
    sent = bytes(range(256)) * 3
    await append(store, data_type="binary", data=sent)
    assert (await newest(store)).payload.data == sent


async def test_empty_message_is_stored(store: MessageStore) -> None:
    await append(store, data=b"")
    assert (await newest(store)).payload.data == b""


async def test_message_keeps_its_user_connection_and_millisecond_time(store: MessageStore) -> None:
    await append(store, connection_id="conn/7#?")
    listed = await newest(store)
    assert (listed.user_id, listed.connection_id, listed.time) == (
        "alice",
        "conn/7#?",
        "2026-11-29T06:07:08.123Z",
    )


# --- sizes ----------------------------------------------------------------------------------------------


async def test_900_kib_binary_message_is_stored_intact(store: MessageStore) -> None:
    sent = bytes(i % 251 for i in range(921_600))
    await append(store, data_type="binary", data=sent)
    assert (await newest(store)).payload.data == sent


async def test_900_kib_text_message_is_stored_intact(store: MessageStore) -> None:
    sent = ("chat message " * 70_893)[:921_600].encode()
    assert len(sent) == 921_600
    await append(store, data=sent)
    assert (await newest(store)).payload.data == sent


async def test_emoji_text_at_the_size_limit_is_stored_intact(store: MessageStore) -> None:
    sent = ("😀" * (MAX_MESSAGE_BYTES // 4)).encode()
    assert len(sent) == MAX_MESSAGE_BYTES
    await append(store, data=sent)
    assert (await newest(store)).payload.data == sent


async def test_message_just_over_the_limit_is_refused_with_size_and_limit(store: MessageStore) -> None:
    with pytest.raises(MessageTooLarge) as refused:
        await append(store, data_type="binary", data=bytes(MAX_MESSAGE_BYTES + 1))
    assert (refused.value.size, refused.value.limit) == (MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES)


async def test_refused_message_leaves_nothing_behind(store: MessageStore) -> None:
    with pytest.raises(MessageTooLarge):
        await append(store, data=("é" * 524_288).encode())
    assert await store.page(hub=HUB, limit=10) == ([], None)


# --- idempotency ----------------------------------------------------------------------------------------


async def test_redelivery_with_another_time_returns_the_original_message(store: MessageStore) -> None:
    first, _ = await append(store, event_id="7", data=b"first")
    again, created = await append(store, event_id="7", data=b"first", received_at=T0 + timedelta(minutes=5))
    assert not created
    assert again == first


async def test_redelivery_stores_no_second_row(
    store: MessageStore, connection_string: str, table_name: str
) -> None:
    await append(store, event_id="7")
    await append(store, event_id="7", received_at=T0 + timedelta(minutes=5))
    rows = await stored_rows(connection_string, table_name)
    assert sorted(row["RowKey"][0] for row in rows) == ["m", "x"]


async def test_concurrent_deliveries_of_one_event_store_one_message(
    store: MessageStore, connection_string: str, table_name: str
) -> None:
    results = await asyncio.gather(
        *(append(store, event_id="7", received_at=T0 + timedelta(milliseconds=i)) for i in range(8))
    )
    assert sum(created for _, created in results) == 1
    assert len({message for message, _ in results}) == 1
    messages, _ = await store.page(hub=HUB, limit=100)
    assert len(messages) == 1


async def test_same_event_id_on_another_connection_is_another_message(store: MessageStore) -> None:
    first, _ = await append(store, event_id="1", connection_id="conn-a")
    second, created = await append(store, event_id="1", connection_id="conn-b")
    assert created
    assert second.id != first.id


async def test_messages_of_one_instant_are_all_stored(store: MessageStore) -> None:
    await asyncio.gather(*(append(store, event_id=str(i)) for i in range(20)))
    messages, _ = await store.page(hub=HUB, limit=100)
    assert len(messages) == 20


# --- history pages --------------------------------------------------------------------------------------


async def fill(store: MessageStore, count: int, hub: str = HUB) -> list[ChatMessage]:
    """`count` messages one second apart, oldest first."""
    stored = []
    for i in range(count):
        message, _ = await append(
            store, event_id=str(i), data=f"m{i}".encode(), received_at=T0 + timedelta(seconds=i), hub=hub
        )
        stored.append(message)
    return stored


async def all_pages(store: MessageStore, limit: int) -> list[list[ChatMessage]]:
    pages, cursor = [], None
    while True:
        messages, cursor = await store.page(hub=HUB, limit=limit, before=cursor)
        pages.append(messages)
        if cursor is None:
            return pages


async def test_history_is_newest_first(store: MessageStore) -> None:
    stored = await fill(store, 4)
    messages, _ = await store.page(hub=HUB, limit=10)
    assert messages == stored[::-1]


async def test_pages_continue_without_gaps_or_duplicates(store: MessageStore) -> None:
    stored = await fill(store, 7)
    pages = await all_pages(store, limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [message for page in pages for message in page] == stored[::-1]


async def test_full_last_page_has_no_cursor(store: MessageStore) -> None:
    await fill(store, 6)
    pages = await all_pages(store, limit=3)
    assert [len(page) for page in pages] == [3, 3]


async def test_empty_history_is_one_empty_page(store: MessageStore) -> None:
    assert await store.page(hub=HUB, limit=5) == ([], None)


async def test_paging_is_unaffected_by_newer_messages_arriving(store: MessageStore) -> None:
    stored = await fill(store, 6)
    first, cursor = await store.page(hub=HUB, limit=2)
    await append(store, event_id="late", received_at=T0 + timedelta(hours=1))
    second, cursor = await store.page(hub=HUB, limit=2, before=cursor)
    third, cursor = await store.page(hub=HUB, limit=2, before=cursor)
    assert first + second + third == stored[::-1]
    assert cursor is None


async def test_claim_rows_never_show_in_history(store: MessageStore) -> None:
    await fill(store, 3)
    messages, cursor = await store.page(hub=HUB, limit=1000)
    assert (len(messages), cursor) == (3, None)


async def test_hubs_have_separate_histories(store: MessageStore) -> None:
    await fill(store, 2, hub="other")
    await append(store, event_id="x")
    messages, _ = await store.page(hub=HUB, limit=10)
    assert len(messages) == 1


@pytest.mark.parametrize("cursor", ["garbage", "1.bTI1", ""])
async def test_invalid_cursor_is_refused(store: MessageStore, cursor: str) -> None:
    await fill(store, 1)
    with pytest.raises(InvalidCursor):
        await store.page(hub=HUB, limit=10, before=cursor)


@pytest.mark.parametrize("limit", [0, 1001])
async def test_limit_outside_one_to_a_thousand_is_a_programming_error(
    store: MessageStore, limit: int
) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.page(hub=HUB, limit=limit)


async def test_hub_spreads_over_its_partitions(
    store: MessageStore, connection_string: str, table_name: str, partitions: int
) -> None:
    await fill(store, 12)
    rows = await stored_rows(connection_string, table_name)
    assert len({row["PartitionKey"] for row in rows}) == partitions


async def test_every_message_shares_a_partition_with_its_claim(
    store: MessageStore, connection_string: str, table_name: str
) -> None:
    await fill(store, 12)
    rows = await stored_rows(connection_string, table_name)
    by_partition: dict[str, list[str]] = {}
    for row in rows:
        by_partition.setdefault(row["PartitionKey"], []).append(row["RowKey"][0])
    assert all(kinds.count("m") == kinds.count("x") for kinds in by_partition.values())


def test_partitions_outside_one_to_64_are_refused() -> None:
    with pytest.raises(ValueError, match="partitions"):
        MessageStore.from_connection_string("UseDevelopmentStorage=true", partitions=0)


# --- configuration and failures -------------------------------------------------------------------------


def test_development_storage_means_azurite_on_10002() -> None:
    store = MessageStore.from_connection_string("UseDevelopmentStorage=true")
    assert store.endpoint.startswith("http://127.0.0.1:10002/devstoreaccount1")


@pytest.fixture
def closed_port_connection_string() -> str:
    return table_connection_string(free_port())


async def test_append_to_unreachable_storage_is_store_unavailable(closed_port_connection_string: str) -> None:
    async with MessageStore.from_connection_string(closed_port_connection_string) as store:
        with pytest.raises(StoreUnavailable) as failed:
            await append(store)
    assert isinstance(failed.value.__cause__, AzureError)


async def test_page_of_unreachable_storage_is_store_unavailable(closed_port_connection_string: str) -> None:
    async with MessageStore.from_connection_string(closed_port_connection_string, retries=0) as store:
        with pytest.raises(StoreUnavailable):
            await store.page(hub=HUB, limit=10)


async def test_presence_on_unreachable_storage_is_store_unavailable(
    closed_port_connection_string: str,
) -> None:
    async with PresenceStore.from_connection_string(closed_port_connection_string, retries=0) as store:
        with pytest.raises(StoreUnavailable):
            await store.connected(hub=HUB, connection_id="c1", user_id="alice", time="t")


async def test_storage_that_never_answers_is_store_unavailable_after_the_timeout(hung_storage: str) -> None:
    async with MessageStore.from_connection_string(hung_storage, timeout_s=0.5, retries=1) as store:
        with pytest.raises(StoreUnavailable):
            # The bound only turns a hang into a failure; the store's own timeout ends the call long before.
            await asyncio.wait_for(append(store), timeout=30)


async def test_redelivered_message_json_is_the_same(store: MessageStore) -> None:
    first, _ = await append(store, data_type="json", data=b'{"n": 1}')
    again, _ = await append(store, data_type="json", data=b'{"n": 1}', received_at=T0 + timedelta(days=1))
    assert json.dumps(again.to_json()) == json.dumps(first.to_json())


async def test_two_messages_drawing_the_same_row_key_are_both_stored(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: the random row key suffix repeats once, as it could for two messages of one tick.
    suffixes = iter(["0000beef", "0000beef", "0000cafe"])
    monkeypatch.setattr("wps_upstream.store.keys.secrets.token_hex", lambda _: next(suffixes))
    first, _ = await append(store, event_id="1", data=b"one")
    second, created = await append(store, event_id="2", data=b"two")
    assert created
    messages, _ = await store.page(hub=HUB, limit=10)
    assert {message.payload.data for message in messages} == {b"one", b"two"}
    assert second.id != first.id
