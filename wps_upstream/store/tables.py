"""One table of the account: its async client built once, the table created when a call finds it
missing, and every store call held to one deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TypeVar

from azure.core.exceptions import AzureError, HttpResponseError
from azure.data.tables.aio import TableClient, TableServiceClient

from wps_upstream.sdk_options import transport_options
from wps_upstream.store.errors import StoreUnavailable, unavailable

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

BACKOFF_FACTOR = 0.2
BACKOFF_MAX = 2.0
DEADLINE_MARGIN_S = 0.5  # the app's own work around the storage calls

T = TypeVar("T")


def deadline_s(timeout_s: float, retries: int) -> float:
    """The longest a store call may take: every attempt timing out, the backoffs between them, a margin."""
    backoffs = sum(min(BACKOFF_MAX, BACKOFF_FACTOR * 2**attempt) for attempt in range(retries))
    return timeout_s * (retries + 1) + backoffs + DEADLINE_MARGIN_S


@dataclass(frozen=True)
class TableEndpoint:
    """A table service reached with an Entra credential instead of a key (Functions' identity connection)."""

    url: str  # https://<account>.table.core.windows.net, or Azurite's https://127.0.0.1:<port>/<account>
    credential: AsyncTokenCredential
    connection_verify: bool | str = True  # a PEM bundle path trusts a local server's own certificate


def _service_client(account: str | TableEndpoint, options: dict[str, Any]) -> TableServiceClient:
    if isinstance(account, TableEndpoint):
        return TableServiceClient(
            account.url, credential=account.credential, connection_verify=account.connection_verify, **options
        )
    return TableServiceClient.from_connection_string(account, **options)


class Table:
    """A table and its client; a call that finds the table missing creates it and runs again.

    `account` is a storage connection string (`UseDevelopmentStorage=true` means Azurite) or a
    `TableEndpoint` reached by identity.
    """

    def __init__(self, account: str | TableEndpoint, table_name: str, timeout_s: float, retries: int) -> None:
        self.name = table_name
        self.deadline_s = deadline_s(timeout_s, retries)
        options: dict[str, Any] = {
            "connection_timeout": timeout_s,
            "read_timeout": timeout_s,
            "retry_total": retries,
            "retry_connect": retries,
            "retry_read": retries,
            "retry_status": retries,
            "retry_backoff_factor": BACKOFF_FACTOR,
            "retry_backoff_max": BACKOFF_MAX,
            **transport_options(),
        }
        self._service = _service_client(account, options)
        self._client = self._service.get_table_client(table_name)
        self._creation: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str:
        """The table service URL (for diagnostics; holds no secret)."""
        return str(self._service.url)

    async def _create(self) -> None:
        """Create the table (if no one else has).

        Callers that arrive while the table is being created wait for that one creation and share its
        outcome; after a failure, the next call tries again.
        """
        creation = self._creation
        if creation is None or (creation.done() and creation.exception() is not None):
            creation = self._creation = asyncio.ensure_future(self._create_once())
        # Shielded: a caller that gives up (its deadline) does not cancel the creation others wait for.
        await asyncio.shield(creation)

    async def _create_once(self) -> None:
        try:
            await self._service.create_table_if_not_exists(self.name)
        except AzureError as error:
            raise unavailable(f"creating table {self.name}", error) from error

    async def run(self, action: str, operation: Callable[[TableClient], Awaitable[T]]) -> T:
        """Run one store call on the table, held to `deadline_s`.

        The table is not checked first: a call that finds it missing creates it and runs once more, so a
        new process makes no extra request when the table exists (the usual case). A storage failure or a
        call past the deadline is StoreUnavailable naming `action`; errors the operation raises on purpose
        pass through.
        """
        try:
            async with asyncio.timeout(self.deadline_s):
                try:
                    return await operation(self._client)
                except HttpResponseError as error:
                    if not table_missing(error):
                        raise
                await self._create()
                return await operation(self._client)
        except TimeoutError as error:
            raise StoreUnavailable(f"{action}: no answer within {self.deadline_s:g} s") from error
        except AzureError as error:
            raise unavailable(action, error) from error

    async def close(self) -> None:
        if self._creation is not None and not self._creation.done():
            self._creation.cancel()
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


def table_missing(error: HttpResponseError) -> bool:
    """Whether storage refused a call because the table does not exist.

    Azure and Azurite say `TableNotFound`. A 404 without an error code counts too: Azurite answers an insert
    (`create_entity`) into a missing table so, and an insert cannot get 404 for another reason; any other
    call answered so costs one creation request that finds the table there, then fails as before.
    """
    if error.status_code != 404:
        return False
    code = getattr(error, "error_code", None)
    return code == "TableNotFound" or code is None
