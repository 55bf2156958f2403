"""Who is connected to each hub: one row per connection, upserted and deleted idempotently."""

from __future__ import annotations

import contextlib
from typing import Self

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from wps_upstream.store.keys import escape_key
from wps_upstream.store.sizes import entity_problem
from wps_upstream.store.tables import Table, TableStore


class PresenceStore(TableStore):
    """Who is connected to each hub: PartitionKey = the hub, RowKey = the connection id (both escaped)."""

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
    ) -> None:
        """Record the connection (upsert: a redelivered event rewrites the same row)."""
        entity = {
            "PartitionKey": escape_key(hub),
            "RowKey": escape_key(connection_id),
            "connectionId": connection_id,
            "userId": user_id,
            "connectedAt": time,
        }
        if user_name is not None:
            entity["userName"] = user_name
        problem = entity_problem(entity)
        if problem:
            raise ValueError(f"presence row too large for Table storage: {problem}")
        await self._table.run(
            "recording a connection", lambda table: table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        )

    async def disconnected(self, *, hub: str, connection_id: str) -> None:
        """Forget the connection; forgetting an unknown connection is fine."""

        async def delete(table: TableClient) -> None:
            with contextlib.suppress(ResourceNotFoundError):
                await table.delete_entity(escape_key(hub), escape_key(connection_id))

        await self._table.run("removing a connection", delete)

    async def online(self, *, hub: str) -> list[tuple[str, str]]:
        """(connection_id, user_id) of every recorded connection of the hub."""

        async def query(table: TableClient) -> list[tuple[str, str]]:
            rows = table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": escape_key(hub)}, select=["connectionId", "userId"]
            )
            return [(row["connectionId"], row["userId"]) async for row in rows]

        return await self._table.run("listing connections", query)
