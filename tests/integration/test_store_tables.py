"""Table creation on real Table storage (Azurite): a store call that finds its table missing creates it and
runs again; when the table exists, a new store makes no request but the call's own.

`creations` counts `create_table_if_not_exists` requests (a spy: each call goes through to Azurite).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient

from tests.constants import HUB
from wps_upstream.payload import Payload
from wps_upstream.store import MessageStore, PresenceStore

T0 = datetime(2026, 12, 3, 10, 11, 12, 345000, tzinfo=UTC)


@pytest.fixture
def creations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the tables the stores asked to create, in order."""
    asked: list[str] = []
    create = TableServiceClient.create_table_if_not_exists

    async def counted(self: TableServiceClient, table_name: str, **kwargs: Any) -> Any:
        asked.append(table_name)
        return await create(self, table_name, **kwargs)

    monkeypatch.setattr(TableServiceClient, "create_table_if_not_exists", counted)
    return asked


@pytest.fixture
def connection_string(azurite: Any) -> str:
    return str(azurite.connection_string)


@pytest.fixture
async def messages(connection_string: str) -> AsyncIterator[MessageStore]:
    async with MessageStore.from_connection_string(
        connection_string, table_name="fresh" + uuid.uuid4().hex[:16]
    ) as store:
        yield store


async def append(store: MessageStore, connection_id: str) -> bool:
    _, created = await store.append(
        hub=HUB,
        connection_id=connection_id,
        event_id="1",
        user_id="alice",
        payload=Payload.decode("text", b"hello"),
        received_at=T0,
    )
    return created


async def test_concurrent_first_appends_create_the_missing_table_once(
    messages: MessageStore, creations: list[str]
) -> None:
    results = await asyncio.gather(*(append(messages, f"conn-{i}") for i in range(12)))
    assert all(results)
    assert len(creations) == 1
    stored, _ = await messages.page(hub=HUB, limit=100)
    assert len(stored) == 12


async def test_reading_a_missing_table_creates_it_and_finds_nothing(
    messages: MessageStore, creations: list[str]
) -> None:
    assert await messages.page(hub=HUB, limit=10) == ([], None)
    assert len(creations) == 1
    assert await append(messages, "conn-a")
    assert len(creations) == 1


async def test_a_new_store_on_an_existing_table_asks_for_no_creation(
    connection_string: str, creations: list[str]
) -> None:
    name = "kept" + uuid.uuid4().hex[:16]
    async with MessageStore.from_connection_string(connection_string, table_name=name) as first:
        assert await append(first, "conn-a")
    assert creations == [name]
    async with MessageStore.from_connection_string(connection_string, table_name=name) as second:
        assert await append(second, "conn-b")
        stored, _ = await second.page(hub=HUB, limit=10)
    assert creations == [name]  # the second store's calls found the table
    assert {message.connection_id for message in stored} == {"conn-a", "conn-b"}


async def test_a_first_connection_on_a_missing_presence_table_creates_it(
    connection_string: str, creations: list[str]
) -> None:
    name = "pres" + uuid.uuid4().hex[:16]
    async with PresenceStore.from_connection_string(connection_string, table_name=name) as presence:
        # An insert into a missing table: Azurite answers a bare 404 without an error code.
        user = await presence.connected(hub=HUB, connection_id="conn-a", user_id="alice", time="t0")
        assert user == "online"
        assert [entry.user_id for entry in await presence.online(hub=HUB)] == ["alice"]
    assert creations == [name]
