"""Who is connected to each hub: one row per connection, upserted and deleted idempotently."""

from __future__ import annotations

from typing import Self

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from wps_upstream.store.errors import unavailable
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

    async def connected(self, *, hub: str, connection_id: str, user_id: str, time: str) -> None:
        """Record the connection (upsert: a redelivered event rewrites the same row)."""
        entity = {
            "PartitionKey": escape_key(hub),
            "RowKey": escape_key(connection_id),
            "connectionId": connection_id,
            "userId": user_id,
            "connectedAt": time,
        }
        problem = entity_problem(entity)
        if problem:
            raise ValueError(f"presence row too large for Table storage: {problem}")
        table = await self._table.client()
        try:
            await table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as error:
            raise unavailable("recording a connection", error) from error

    async def disconnected(self, *, hub: str, connection_id: str) -> None:
        """Forget the connection; forgetting an unknown connection is fine."""
        table = await self._table.client()
        try:
            await table.delete_entity(escape_key(hub), escape_key(connection_id))
        except ResourceNotFoundError:
            pass
        except AzureError as error:
            raise unavailable("removing a connection", error) from error

    async def online(self, *, hub: str) -> list[tuple[str, str]]:
        """(connection_id, user_id) of every recorded connection of the hub."""
        table = await self._table.client()
        try:
            return [
                (row["connectionId"], row["userId"])
                async for row in table.query_entities(
                    "PartitionKey eq @pk",
                    parameters={"pk": escape_key(hub)},
                    select=["connectionId", "userId"],
                )
            ]
        except AzureError as error:
            raise unavailable("listing connections", error) from error
