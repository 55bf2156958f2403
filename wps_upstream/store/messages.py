"""Chat history of each hub: idempotent appends and newest-first pages (layout: docs/store.md).

The message row and a claim row keyed by (connection id, ce-id) are created in one entity-group
transaction, so a redelivered event conflicts on its claim and gets the original message back; nothing
is decided by reading first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from wps_upstream.chat import ChatMessage
from wps_upstream.payload import InvalidPayload, Payload
from wps_upstream.store.cursors import decode_cursor, encode_cursor
from wps_upstream.store.errors import CorruptRow, MessageTooLarge, StoreUnavailable, unavailable
from wps_upstream.store.keys import (
    MESSAGE_ROW_PREFIX,
    MESSAGE_ROWS_END,
    claim_row_key,
    message_id,
    message_partition,
    message_row_key,
    shard_of,
)
from wps_upstream.store.sizes import (
    STRING_UNITS_LIMIT,
    chunk_count,
    join_chunks,
    payload_capacity,
    split_chunks,
    utf16_units,
)
from wps_upstream.store.tables import Table, TableStore
from wps_upstream.times import iso_time

QUERY_PAGE_LIMIT = 1000  # the most rows one query page returns
_SCHEMA_VERSION = 1
_KEY_ATTEMPTS = 3


class MessageStore(TableStore):
    """Chat history of each hub: idempotent appends and newest-first pages."""

    def __init__(self, table: Table, partitions: int = 1) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        super().__init__(table)
        self._partitions = partitions

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        *,
        table_name: str = "messages",
        timeout_s: float = 10.0,
        retries: int = 2,
        partitions: int = 1,
    ) -> Self:
        """A store on the account of `connection_string` (`UseDevelopmentStorage=true` means Azurite).

        `partitions` spreads each hub over that many table partitions (write throughput scales with it;
        a history page reads every one). It may be raised later, never lowered: see docs/store.md.
        """
        return cls(Table(connection_string, table_name, timeout_s, retries), partitions)

    async def append(
        self,
        *,
        hub: str,
        connection_id: str,
        event_id: str,
        user_id: str,
        payload: Payload,
        received_at: datetime,
    ) -> tuple[ChatMessage, bool]:
        """Store once per (hub, connection_id, event_id); returns (message, created).

        A redelivery (even with another received_at) returns the originally stored message and
        created=False.
        """
        claim_key = claim_row_key(connection_id, event_id)
        partition = message_partition(hub, shard_of(claim_key, self._partitions))
        envelope = _envelope(partition, received_at, user_id, connection_id, payload)
        chunks = split_chunks(payload.data)
        table = await self._table.client()
        for _ in range(_KEY_ATTEMPTS):
            claim = {"PartitionKey": partition, "RowKey": claim_key, "message": envelope["RowKey"]}
            if await _create_together(table, envelope | chunks, claim):
                return _message(envelope, payload), True
            stored = await self._claimed(table, partition, claim_key)
            if stored is not None:
                return stored, False
            # No claim: the random suffix met another message of the same tick. Draw again (every row
            # key has the same length, so the size check still holds).
            envelope["RowKey"] = message_row_key(received_at)
        raise StoreUnavailable("storing a message: new message keys kept colliding")

    async def _claimed(self, table: TableClient, partition: str, claim_key: str) -> ChatMessage | None:
        """The message an existing claim names, or None when there is no such claim."""
        try:
            claim = await table.get_entity(partition, claim_key)
            row = await table.get_entity(partition, claim["message"])
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise unavailable("reading a stored message", error) from error
        return message_from_row(row)

    async def page(
        self, *, hub: str, limit: int, before: str | None = None
    ) -> tuple[list[ChatMessage], str | None]:
        """Newest first; `before` is the cursor of the previous page (None = newest).

        Returns (messages, next cursor, or None when there is nothing older). Cursors are row keys, so
        paging neither repeats nor skips messages while newer ones arrive.
        """
        if not 1 <= limit <= QUERY_PAGE_LIMIT:
            raise ValueError(f"limit must be between 1 and {QUERY_PAGE_LIMIT}, not {limit}")
        after = decode_cursor(before) if before is not None else MESSAGE_ROW_PREFIX
        partitions = [message_partition(hub, shard) for shard in range(self._partitions)]
        table = await self._table.client()
        try:
            found = await asyncio.gather(*(_newest_rows(table, pk, after, limit) for pk in partitions))
            rows = sorted((row for shard_rows in found for row in shard_rows), key=lambda row: row["RowKey"])
            page = rows[:limit]
            more = len(rows) > limit or await _any_older(table, partitions, found, limit, page)
        except AzureError as error:
            raise unavailable("reading messages", error) from error
        cursor = encode_cursor(page[-1]["RowKey"]) if more else None
        return [message_from_row(row) for row in page], cursor


def _envelope(
    partition: str, received_at: datetime, user_id: str, connection_id: str, payload: Payload
) -> dict[str, Any]:
    """The message row without its payload chunks; MessageTooLarge when the payload cannot fit beside it."""
    for name, value in (("user id", user_id), ("connection id", connection_id)):
        # Ids come from the service and the app validates user ids; this only guards Azure's string limit.
        if utf16_units(value) > STRING_UNITS_LIMIT:
            raise ValueError(f"the {name} is too long for Table storage ({utf16_units(value)} UTF-16 units)")
    envelope: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": message_row_key(received_at),
        "v": _SCHEMA_VERSION,
        "userId": user_id,
        "connectionId": connection_id,
        "time": iso_time(received_at),
        "dataType": payload.data_type,
        "size": len(payload.data),
        "chunks": chunk_count(len(payload.data)),
    }
    capacity = payload_capacity(envelope)
    if len(payload.data) > capacity:
        raise MessageTooLarge(len(payload.data), capacity)
    return envelope


async def _create_together(table: TableClient, message: dict[str, Any], claim: dict[str, Any]) -> bool:
    """Create the message row and its claim in one transaction; False when a row already exists."""
    try:
        await table.submit_transaction([("create", message), ("create", claim)])
    except AzureError as error:
        if getattr(error, "status_code", None) == 409:
            return False
        raise unavailable("storing a message", error) from error
    return True


_MESSAGES_AFTER = "PartitionKey eq @pk and RowKey gt @after and RowKey lt @end"


def _range(partition: str, after: str) -> dict[str, str]:
    return {"pk": partition, "after": after, "end": MESSAGE_ROWS_END}


async def _newest_rows(table: TableClient, partition: str, after: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` message rows of one partition that are older than the row key `after`."""
    rows: list[dict[str, Any]] = []
    async for row in table.query_entities(
        _MESSAGES_AFTER, parameters=_range(partition, after), results_per_page=limit
    ):
        rows.append(row)
        if len(rows) == limit:
            break
    return rows


async def _any_older(
    table: TableClient,
    partitions: list[str],
    found: list[list[dict[str, Any]]],
    limit: int,
    page: list[dict[str, Any]],
) -> bool:
    """Whether a partition holds rows older than the page; only one that filled its own page can."""
    full = [pk for pk, shard_rows in zip(partitions, found, strict=True) if len(shard_rows) == limit]
    return any(await asyncio.gather(*(_has_rows_after(table, pk, page[-1]["RowKey"]) for pk in full)))


async def _has_rows_after(table: TableClient, partition: str, after: str) -> bool:
    """Whether the partition holds a message row older than `after` (a keys-only probe of one row)."""
    probe = table.query_entities(
        _MESSAGES_AFTER, parameters=_range(partition, after), results_per_page=1, select=["RowKey"]
    )
    async for _ in probe:
        return True
    return False


def _message(row: Mapping[str, Any], payload: Payload) -> ChatMessage:
    return ChatMessage(
        id=message_id(row["RowKey"]),
        user_id=row["userId"],
        connection_id=row["connectionId"],
        time=row["time"],
        payload=payload,
    )


def message_from_row(row: Mapping[str, Any]) -> ChatMessage:
    """The chat message a stored row holds; CorruptRow when it cannot be read back intact."""
    data = join_chunks(row, int(row["chunks"]))
    if len(data) != int(row["size"]):
        raise CorruptRow(row["RowKey"], f"incomplete: {len(data)} of {row['size']} bytes")
    try:
        payload = Payload.decode(row["dataType"], data)
    except InvalidPayload as error:
        raise CorruptRow(row["RowKey"], str(error)) from error
    return _message(row, payload)
