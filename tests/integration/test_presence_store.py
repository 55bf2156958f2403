"""Who is online, on real Azurite: per user across connections, events out of order, tombstones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableClient

from wps_upstream.store import PresenceStore
from wps_upstream.store.presence import OnlineUser

HUB = "chat"
T0 = "2026-11-29T06:07:08.000Z"
T1 = "2026-11-29T06:07:09.000Z"
T2 = "2026-11-29T06:07:10.000Z"


@pytest.fixture
def table_name() -> str:
    return "presence" + uuid.uuid4().hex[:16]


@pytest.fixture
async def presence(azurite: Any, table_name: str) -> AsyncIterator[PresenceStore]:
    async with PresenceStore.from_connection_string(
        azurite.connection_string, table_name=table_name
    ) as store:
        yield store


async def live(presence: PresenceStore, hub: str = HUB) -> list[tuple[str, str]]:
    return sorted((c.connection_id, c.user_id) for c in await presence.connections(hub=hub))


async def test_first_connection_brings_the_user_online(presence: PresenceStore) -> None:
    assert await presence.connected(hub=HUB, connection_id="c1", user_id="ann", time=T0) == "online"
    assert await presence.online(hub=HUB) == [OnlineUser("ann", None, 1, T0)]


async def test_second_connection_of_a_user_leaves_the_user_unchanged(presence: PresenceStore) -> None:
    await presence.connected(hub=HUB, connection_id="c1", user_id="ann", time=T0)
    assert await presence.connected(hub=HUB, connection_id="c2", user_id="ann", time=T1) == "unchanged"
    assert await presence.online(hub=HUB) == [OnlineUser("ann", None, 2, T0)]


async def test_closing_one_of_two_tabs_keeps_the_user_online(presence: PresenceStore) -> None:
    await presence.connected(hub=HUB, connection_id="c1", user_id="ann", time=T0)
    await presence.connected(hub=HUB, connection_id="c2", user_id="ann", time=T1)
    assert await presence.disconnected(hub=HUB, connection_id="c1", user_id="ann", time=T2) == "unchanged"
    assert await presence.online(hub=HUB) == [OnlineUser("ann", None, 1, T1)]
    assert await presence.disconnected(hub=HUB, connection_id="c2", user_id="ann", time=T2) == "offline"
    assert await presence.online(hub=HUB) == []


async def test_a_redelivered_connected_keeps_one_row_and_answers_the_same(presence: PresenceStore) -> None:
    answers = [
        await presence.connected(hub=HUB, connection_id="c1", user_id="ann", time=T0) for _ in range(2)
    ]
    assert answers == ["online", "online"]
    assert await live(presence) == [("c1", "ann")]


async def test_a_disconnected_that_overtakes_its_connected_leaves_no_row(presence: PresenceStore) -> None:
    assert await presence.disconnected(hub=HUB, connection_id="c1", user_id="ann", time=T1) == "offline"
    assert await presence.connected(hub=HUB, connection_id="c1", user_id="ann", time=T0) is None
    assert await presence.online(hub=HUB) == []


async def test_users_are_listed_once_each_oldest_first(presence: PresenceStore) -> None:
    await presence.connected(hub=HUB, connection_id="b1", user_id="bob", time=T1)
    await presence.connected(hub=HUB, connection_id="a1", user_id="ann", time=T2)
    await presence.connected(hub=HUB, connection_id="b2", user_id="bob", time=T2)
    await presence.connected(hub=HUB, connection_id="z1", user_id="zoe", time=T0)
    assert [(u.user_id, u.connections, u.since) for u in await presence.online(hub=HUB)] == [
        ("zoe", 1, T0),
        ("bob", 2, T1),
        ("ann", 1, T2),
    ]


async def test_the_newest_connections_display_name_is_listed(presence: PresenceStore) -> None:
    await presence.connected(hub=HUB, connection_id="c1", user_id="aad:1", time=T0, user_name="Ann")
    await presence.connected(hub=HUB, connection_id="c2", user_id="aad:1", time=T1, user_name="Ann Smith")
    (user,) = await presence.online(hub=HUB)
    assert (user.user_name, user.to_json()["userName"]) == ("Ann Smith", "Ann Smith")


async def test_ids_with_key_forbidden_characters_are_recorded(presence: PresenceStore) -> None:
    awkward_connection, awkward_user = "a/b\\c#d?e%f\x01", "x/y#z%|w"
    await presence.connected(hub=HUB, connection_id=awkward_connection, user_id=awkward_user, time=T0)
    await presence.connected(hub=HUB, connection_id="c2", user_id="x", time=T0)
    assert await live(presence) == [(awkward_connection, awkward_user), ("c2", "x")]
    assert (
        await presence.disconnected(hub=HUB, connection_id=awkward_connection, user_id=awkward_user, time=T1)
        == "offline"
    )
    assert await live(presence) == [("c2", "x")]


async def test_presence_is_per_hub(presence: PresenceStore) -> None:
    await presence.connected(hub="other", connection_id="c1", user_id="ann", time=T0)
    assert await presence.online(hub=HUB) == []


async def test_old_tombstones_are_purged_and_new_ones_kept(
    presence: PresenceStore, azurite: Any, table_name: str
) -> None:
    await presence.disconnected(hub=HUB, connection_id="old", user_id="ann", time=T0)
    await presence.disconnected(hub=HUB, connection_id="new", user_id="ann", time=T2)
    now = datetime(2026, 11, 29, 6, 17, 9, 500_000, tzinfo=UTC)  # 10 min after T1
    assert await presence.purge_gone(hub=HUB, older_than=timedelta(minutes=10), now=now) == 1
    async with TableClient.from_connection_string(azurite.connection_string, table_name) as table:
        assert [row["connectionId"] async for row in table.list_entities()] == ["new"]


async def test_reconciled_marks_the_row_as_read_gone(presence: PresenceStore) -> None:
    await presence.connected(hub=HUB, connection_id="c1", user_id="ann", time=T0)
    (connection,) = await presence.connections(hub=HUB)
    assert await presence.reconciled(hub=HUB, connection=connection, time=T1) == "offline"
    assert await presence.online(hub=HUB) == []


async def test_a_checked_connection_records_when(presence: PresenceStore) -> None:
    await presence.connected(hub=HUB, connection_id="c1", user_id="ann", time=T0)
    (connection,) = await presence.connections(hub=HUB)
    await presence.checked(hub=HUB, connection=connection, time=T2)
    assert [c.checked_at for c in await presence.connections(hub=HUB)] == [T2]
