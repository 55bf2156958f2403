"""One table of the account: its async client built once, the table created on first use."""

from __future__ import annotations

import asyncio
from typing import Self

from azure.core.exceptions import AzureError
from azure.data.tables.aio import TableClient, TableServiceClient

from wps_upstream.store.errors import unavailable


class Table:
    """A table and its client; `client()` creates the table the first time it is needed."""

    def __init__(self, connection_string: str, table_name: str, timeout_s: float, retries: int) -> None:
        self.name = table_name
        self._service = TableServiceClient.from_connection_string(
            connection_string,
            connection_timeout=timeout_s,
            read_timeout=timeout_s,
            retry_total=retries,
            retry_connect=retries,
            retry_read=retries,
            retry_status=retries,
            retry_backoff_factor=0.2,
            retry_backoff_max=2,
        )
        self._client = self._service.get_table_client(table_name)
        self._created = False
        self._creating = asyncio.Lock()

    @property
    def endpoint(self) -> str:
        """The table service URL (for diagnostics; holds no secret)."""
        return str(self._service.url)

    async def client(self) -> TableClient:
        """The table client; creates the table the first time (once per object)."""
        if not self._created:
            async with self._creating:
                if not self._created:
                    try:
                        await self._service.create_table_if_not_exists(self.name)
                    except AzureError as error:
                        raise unavailable(f"creating table {self.name}", error) from error
                    self._created = True
        return self._client

    async def close(self) -> None:
        await self._client.close()
        await self._service.close()


class TableStore:
    """What every store shares: one table, its endpoint, closing, and `async with`."""

    def __init__(self, table: Table) -> None:
        self._table = table

    @property
    def endpoint(self) -> str:
        """The table service URL this store talks to (holds no secret)."""
        return self._table.endpoint

    async def close(self) -> None:
        """Close the clients."""
        await self._table.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
