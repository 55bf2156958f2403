"""Who is online in each hub: one row per connection, grouped by user when read.

Layout (docs/store.md): PartitionKey = the hub; RowKey = user id + ``%|`` + connection id (both
escaped; escaped keys never contain ``%|``), so one user's connections are one key range. A
`disconnected` event does not delete its row: it marks it gone (a tombstone). A `connected` that arrives
after its `disconnected` (the service retries, and events can overtake each other) then finds the
tombstone and leaves no row behind. Tombstones are purged once they are old (`purge_gone`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from wps_upstream.chat import UserState
from wps_upstream.store.keys import escape_key
from wps_upstream.store.sizes import entity_problem
from wps_upstream.store.tables import Table, TableStore
from wps_upstream.times import iso_time

_USER_END = "%|"  # between the user and the connection in a row key
_AFTER_USER_END = "%}"  # the first key after every row key of one user


@dataclass(frozen=True, slots=True)
class Connection:
    """One live connection as recorded."""

    connection_id: str
    user_id: str
    user_name: str | None
    connected_at: str
    checked_at: str | None
    row_key: str
    stored_at: datetime | None = None  # the storage's Timestamp: orders connections of the same second


@dataclass(frozen=True, slots=True)
class OnlineUser:
    """A user with at least one live connection; `since` is the time of the oldest."""

    user_id: str
    user_name: str | None
    connections: int
    since: str

    def to_json(self) -> dict[str, Any]:
        """The shape /api/presence lists."""
        user: dict[str, Any] = {"userId": self.user_id}
        if self.user_name is not None:
            user["userName"] = self.user_name
        return user | {"connections": self.connections, "since": self.since}


class PresenceStore(TableStore):
    """Who is connected to each hub, by connection and by user."""

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        *,
        table_name: str = "presence",
        timeout_s: float = 10.0,
        retries: int = 2,
    ) -> Self:
        """A store on the account of `connection_string` (`UseDevelopmentStorage=true` means Azurite)."""
        return cls(Table(connection_string, table_name, timeout_s, retries))

    async def connected(
        self, *, hub: str, connection_id: str, user_id: str, time: str, user_name: str | None = None
    ) -> UserState | None:
        """Record the connection; "online" when it is the user's first, "unchanged" when the user had one.

        None when the connection is already gone (its `disconnected` came first): nothing is recorded.
        A redelivered `connected` finds its own row and answers as the first delivery did.
        """
        row = _row(hub, user_id, connection_id) | {"connectedAt": time}
        if user_name is not None:
            row["userName"] = user_name
        problem = entity_problem(row)
        if problem:
            raise ValueError(f"presence row too large for Table storage: {problem}")

        async def record(table: TableClient) -> UserState | None:
            try:
                await table.create_entity(row)
            except ResourceExistsError:
                stored = await table.get_entity(row["PartitionKey"], row["RowKey"])
                if stored.get("gone"):
                    return None
            oldest = _oldest(await _live(table, hub, user_id))
            return "online" if oldest is None or oldest.connection_id == connection_id else "unchanged"

        return await self._table.run("recording a connection", record)

    async def disconnected(self, *, hub: str, connection_id: str, user_id: str, time: str) -> UserState:
        """Mark the connection gone; "offline" when the user has no live connection left.

        Marking (not deleting) keeps a late `connected` of the same connection from recording it again.
        """
        return await self._mark_gone(hub, _row(hub, user_id, connection_id), time)

    async def reconciled(self, *, hub: str, connection: Connection, time: str) -> UserState:
        """Mark a recorded connection gone that the service no longer knows (its row, as it was read)."""
        row = _row(hub, connection.user_id, connection.connection_id) | {"RowKey": connection.row_key}
        return await self._mark_gone(hub, row, time)

    async def _mark_gone(self, hub: str, row: dict[str, Any], time: str) -> UserState:
        tombstone = row | {"gone": True, "goneAt": time}

        async def mark(table: TableClient) -> UserState:
            await table.upsert_entity(tombstone, mode=UpdateMode.MERGE)
            return "unchanged" if await _live(table, hub, row["userId"]) else "offline"

        return await self._table.run("removing a connection", mark)

    async def online(self, *, hub: str) -> list[OnlineUser]:
        """Every user with a live connection, oldest connection first (reads one row per connection)."""

        async def read(table: TableClient) -> list[OnlineUser]:
            return _by_user(await _live(table, hub, None))

        return await self._table.run("listing who is online", read)

    async def connections(self, *, hub: str) -> list[Connection]:
        """Every live connection of the hub."""

        async def read(table: TableClient) -> list[Connection]:
            return await _live(table, hub, None)

        return await self._table.run("listing connections", read)

    async def checked(self, *, hub: str, connection: Connection, time: str) -> None:
        """Note that the service still knows the connection (reconciliation checks the least recent first)."""
        row = {"PartitionKey": escape_key(hub), "RowKey": connection.row_key, "checkedAt": time}
        await self._table.run(
            "noting a connection check", lambda table: table.update_entity(row, mode=UpdateMode.MERGE)
        )

    async def purge_gone(self, *, hub: str, older_than: timedelta, now: datetime | None = None) -> int:
        """Delete tombstones older than `older_than` (past any redelivery of their `connected`)."""
        cutoff = iso_time((now or datetime.now(UTC)) - older_than)

        async def purge(table: TableClient) -> int:
            rows = table.query_entities(
                "PartitionKey eq @pk and gone eq true and goneAt lt @cutoff",
                parameters={"pk": escape_key(hub), "cutoff": cutoff},
                select=["PartitionKey", "RowKey"],
            )
            old = [row async for row in rows]
            for row in old:
                await table.delete_entity(row["PartitionKey"], row["RowKey"])
            return len(old)

        return await self._table.run("purging old tombstones", purge)


def _row(hub: str, user_id: str, connection_id: str) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(hub),
        "RowKey": escape_key(user_id) + _USER_END + escape_key(connection_id),
        "userId": user_id,
        "connectionId": connection_id,
    }


async def _live(table: TableClient, hub: str, user_id: str | None) -> list[Connection]:
    """The hub's live connections (of one user when given: one key range)."""
    if user_id is None:
        query, parameters = "PartitionKey eq @pk", {"pk": escape_key(hub)}
    else:
        user_key = escape_key(user_id)
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey lt @end"
        parameters = {"pk": escape_key(hub), "first": user_key + _USER_END, "end": user_key + _AFTER_USER_END}
    rows = table.query_entities(query, parameters=parameters)
    return [_connection(row) async for row in rows if not row.get("gone") and "connectedAt" in row]


def _connection(row: Mapping[str, Any]) -> Connection:
    return Connection(
        connection_id=row["connectionId"],
        user_id=row["userId"],
        user_name=row.get("userName"),
        connected_at=row["connectedAt"],
        checked_at=row.get("checkedAt"),
        row_key=row["RowKey"],
        stored_at=getattr(row, "metadata", {}).get("timestamp"),
    )


_NO_TIMESTAMP = datetime.max.replace(tzinfo=UTC)


def _age(connection: Connection) -> tuple[str, datetime, str]:
    """Oldest first: by `connectedAt` (ce-time, which may have only seconds), then by when storage wrote
    the row, so that of two tabs opened in the same second the first one written is the older."""
    return (connection.connected_at, connection.stored_at or _NO_TIMESTAMP, connection.connection_id)


def _oldest(connections: Iterable[Connection]) -> Connection | None:
    return min(connections, key=_age, default=None)


def _by_user(connections: Iterable[Connection]) -> list[OnlineUser]:
    """One entry per user, sorted by the time of each user's oldest connection."""
    users: dict[str, list[Connection]] = {}
    for connection in connections:
        users.setdefault(connection.user_id, []).append(connection)
    listed = []
    for user_id, own in users.items():
        oldest = min(own, key=_age)
        newest_name = max(own, key=_age).user_name
        listed.append(OnlineUser(user_id, newest_name, len(own), oldest.connected_at))
    return sorted(listed, key=lambda user: (user.since, user.user_id))
