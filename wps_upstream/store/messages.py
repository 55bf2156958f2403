"""Chat history of each hub: idempotent appends and newest-first pages (layout: docs/store.md).

The message row and a claim row keyed by (connection id, ce-id) are created in one entity-group
transaction, so a redelivered event conflicts on its claim and gets the original message back; nothing
is decided by reading first. Concurrent appends to one partition share that transaction (group commit,
`group_commit.py`); a lone append, and every append of a transaction that was refused, writes alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from wps_upstream.chat import ChatMessage
from wps_upstream.errors import MessageTooLarge
from wps_upstream.payload import InvalidPayload, Payload
from wps_upstream.store.cursors import decode_cursor, encode_cursor
from wps_upstream.store.errors import CorruptRow, RedeliveryMismatch, StoreUnavailable, UnknownMessage
from wps_upstream.store.group_commit import (
    CREATE_OPTIONS,
    GroupCommit,
    Outcome,
    Pending,
    Statistics,
    request_bytes,
)
from wps_upstream.store.keys import (
    MESSAGE_ROW_KEY,
    MESSAGE_ROW_PREFIX,
    MESSAGE_ROWS_END,
    claim_row_key,
    content_digest,
    message_partition,
    message_row_key,
    shard_of,
)
from wps_upstream.store.keys import (
    message_id as message_id_of,
)
from wps_upstream.store.pages import RowRef, band_after, probe, read_rows, within_budget
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

logger = logging.getLogger(__name__)

QUERY_PAGE_LIMIT = 1000  # the most rows one query page returns
_REPORTED_LIMIT = 1000
_SCHEMA_VERSION = 1
_KEY_ATTEMPTS = 3


class MessageStore(TableStore):
    """Chat history of each hub: idempotent appends and newest-first pages."""

    def __init__(self, table: Table, partitions: int = 1, *, group_commit: bool = True) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        super().__init__(table)
        self._partitions = partitions
        self._reported: set[str] = set()  # corrupt rows already logged, so each is logged once
        self._group = GroupCommit(table)
        self.group_commit = group_commit
        """Whether concurrent appends share transactions; False writes every append alone (for comparison)."""

    @property
    def max_in_flight(self) -> int:
        """Writes in flight per partition (group_commit.MAX_IN_FLIGHT); 1 sends what queued only when the
        write in flight returns (for comparison)."""
        return self._group.max_in_flight

    @max_in_flight.setter
    def max_in_flight(self, writes: int) -> None:
        if writes < 1:
            raise ValueError(f"at least one write must be allowed in flight, not {writes}")
        self._group.max_in_flight = writes

    @property
    def commit_statistics(self) -> Statistics:
        """How many shared transactions group commit has sent, and how many appends they held."""
        return self._group.statistics

    async def close(self) -> None:
        """Close the clients; appends still waiting for a shared transaction get StoreUnavailable."""
        await self._group.close()
        await super().close()

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
        user_name: str | None = None,
    ) -> tuple[ChatMessage, bool]:
        """Store once per (hub, connection_id, event_id); returns (message, created).

        A redelivery (even with another received_at) returns the originally stored message and
        created=False; the same event id with other content raises RedeliveryMismatch.
        """
        claim_key = claim_row_key(connection_id, event_id)
        partition = message_partition(hub, shard_of(claim_key, self._partitions))
        append = _Append(
            partition,
            claim_key,
            _envelope(partition, received_at, user_id, user_name, connection_id, payload),
            payload,
            content_digest(user_id, payload.data_type, payload.data),
            received_at,
        )
        try:
            if self.group_commit:
                return await self._append_grouped(append)
            return await self._append_alone(append)
        except RedeliveryMismatch:
            logger.warning(
                "Event %s of connection %s reuses the id of a stored event with other content "
                "(a possible replay); refused",
                event_id,
                connection_id,
            )
            raise

    async def _append_grouped(self, append: _Append) -> tuple[ChatMessage, bool]:
        """Write at once to an idle partition, or share the transaction of the appends queued meanwhile."""
        if self._group.lead(append.partition):  # nothing in flight: exactly the path of a lone append
            return await self._lead(append)
        rows = append.rows()
        pending = Pending(append.partition, append.claim_key, rows, sum(map(request_bytes, rows)))
        deadline = self._table.deadline_s
        try:
            async with asyncio.timeout(deadline):  # waiting in the queue counts against the store's deadline
                outcome = await self._group.join(pending)
                if outcome is Outcome.LEAD:
                    return await self._lead(append)
                if outcome is Outcome.ALONE:
                    return await self._append_alone(append)
        except TimeoutError as error:
            raise StoreUnavailable(f"storing a message: no answer within {deadline:g} s") from error
        return _message(append.envelope, append.payload), True

    async def _lead(self, append: _Append) -> tuple[ChatMessage, bool]:
        try:
            return await self._append_alone(append)
        finally:
            self._group.done(append.partition)  # what queued meanwhile goes out now

    async def _append_alone(self, append: _Append) -> tuple[ChatMessage, bool]:
        """The message and its claim in a transaction of their own; a conflict finds the stored message."""

        async def store(table: TableClient) -> tuple[ChatMessage, bool]:
            for _ in range(_KEY_ATTEMPTS):
                if await _create_together(table, *append.rows()):
                    return _message(append.envelope, append.payload), True
                stored = await _claimed(table, append.partition, append.claim_key, append.digest)
                if stored is not None:
                    return stored, False
                # No claim: the random suffix met another message of the same tick. Draw again (every
                # row key has the same length, so the size check still holds).
                append.envelope["RowKey"] = message_row_key(append.received_at)
            raise StoreUnavailable("storing a message: new message keys kept colliding")

        return await self._table.run("storing a message", store)

    async def page(
        self, *, hub: str, limit: int, before: str | None = None
    ) -> tuple[list[ChatMessage], str | None]:
        """Newest first; `before` is the cursor of the previous page (None = newest).

        Returns (messages, next cursor, or None when there is nothing older). A page holds at most `limit`
        messages and MAX_PAGE_BYTES of payload. Cursors are row keys, so paging neither repeats nor skips
        messages while newer ones arrive. A row that cannot be read back is left out (and logged once).
        """
        if not 1 <= limit <= QUERY_PAGE_LIMIT:
            raise ValueError(f"limit must be between 1 and {QUERY_PAGE_LIMIT}, not {limit}")
        after = decode_cursor(before) if before is not None else MESSAGE_ROW_PREFIX

        async def read(table: TableClient) -> tuple[list[RowRef], list[RowRef], dict[str, dict[str, Any]]]:
            refs = await probe(table, self._partitions_of(hub), after, MESSAGE_ROWS_END, limit + 1)
            chosen = within_budget(refs, limit)
            return refs, chosen, await read_rows(table, chosen)

        refs, chosen, rows = await self._table.run("reading messages", read)
        cursor = encode_cursor(chosen[-1].row_key) if len(refs) > len(chosen) else None
        return self._readable(row for _, row in sorted(rows.items())), cursor

    async def newer_than(
        self, *, hub: str, message_id: str, limit: int
    ) -> tuple[list[ChatMessage], str | None]:
        """Oldest first: the messages stored after the message `message_id` (catch-up after a reconnect).

        Returns (messages, the id to continue after, or None when there is nothing newer). The same
        limits as `page` hold (`limit` messages, MAX_PAGE_BYTES of payload). UnknownMessage when the id is
        not one of this hub's stored messages.
        """
        if not 1 <= limit <= QUERY_PAGE_LIMIT:
            raise ValueError(f"limit must be between 1 and {QUERY_PAGE_LIMIT}, not {limit}")
        row_key = MESSAGE_ROW_PREFIX + message_id
        if not MESSAGE_ROW_KEY.fullmatch(row_key):
            raise UnknownMessage(message_id, "is not a message id of this app")
        partitions = self._partitions_of(hub)

        async def read(table: TableClient) -> tuple[list[RowRef], bool, dict[str, dict[str, Any]]]:
            if not any(await asyncio.gather(*(_has_row(table, pk, row_key) for pk in partitions))):
                raise UnknownMessage(message_id, "names no stored message")
            band = await band_after(table, partitions, row_key, limit)
            chosen = within_budget(band.refs[::-1], limit)
            more = len(band.refs) > len(chosen)
            if band.bounded and not more:
                more = bool(await probe(table, partitions, MESSAGE_ROW_PREFIX, chosen[-1].row_key, 1))
            return chosen, more, await read_rows(table, chosen)

        chosen, more, rows = await self._table.run("reading messages", read)
        next_id = message_id_of(chosen[-1].row_key) if more else None
        ordered = (rows[ref.row_key] for ref in chosen if ref.row_key in rows)
        return self._readable(ordered), next_id

    def _partitions_of(self, hub: str) -> list[str]:
        return [message_partition(hub, shard) for shard in range(self._partitions)]

    def _readable(self, rows: Iterable[Mapping[str, Any]]) -> list[ChatMessage]:
        """The messages of `rows`, leaving out (and logging once per row) any that cannot be read back."""
        messages = []
        for row in rows:
            try:
                messages.append(message_from_row(row))
            except CorruptRow as corrupt:
                if corrupt.row_key not in self._reported and len(self._reported) < _REPORTED_LIMIT:
                    self._reported.add(corrupt.row_key)
                    logger.error(
                        "Left stored message %s out of history: %s", corrupt.row_key, corrupt.problem
                    )
        return messages


async def _has_row(table: TableClient, partition: str, row_key: str) -> bool:
    try:
        await table.get_entity(partition, row_key, select=["RowKey"])
    except ResourceNotFoundError:
        return False
    return True


@dataclass(eq=False, slots=True)
class _Append:
    """One append's rows before they are written: the message row without its chunks, and the claim."""

    partition: str
    claim_key: str
    envelope: dict[str, Any]  # the message row without its payload chunks
    payload: Payload
    digest: str
    received_at: datetime

    def rows(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The message row and its claim row, created together."""
        claim = {
            "PartitionKey": self.partition,
            "RowKey": self.claim_key,
            "message": self.envelope["RowKey"],
            "digest": self.digest,
        }
        return self.envelope | split_chunks(self.payload.data), claim


async def _claimed(table: TableClient, partition: str, claim_key: str, digest: str) -> ChatMessage | None:
    """The message an existing claim names, or None when there is no such claim.

    RedeliveryMismatch when the claim was made for other content (claims record a digest of it; for
    claims without one, the stored message itself is compared).
    """
    try:
        claim = await table.get_entity(partition, claim_key)
        if claim.get("digest", digest) != digest:
            raise RedeliveryMismatch()
        row = await table.get_entity(partition, claim["message"])
    except ResourceNotFoundError:
        return None
    message = message_from_row(row)
    if content_digest(message.user_id, message.payload.data_type, message.payload.data) != digest:
        raise RedeliveryMismatch()
    return message


def _envelope(
    partition: str,
    received_at: datetime,
    user_id: str,
    user_name: str | None,
    connection_id: str,
    payload: Payload,
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
    if user_name is not None:
        envelope["userName"] = user_name
    capacity = payload_capacity(envelope)
    if len(payload.data) > capacity:
        raise MessageTooLarge(len(payload.data), capacity)
    return envelope


async def _create_together(table: TableClient, message: dict[str, Any], claim: dict[str, Any]) -> bool:
    """Create the message row and its claim in one transaction; False when a row already exists."""
    try:
        await table.submit_transaction(
            [("create", message, CREATE_OPTIONS), ("create", claim, CREATE_OPTIONS)]
        )
    except AzureError as error:
        if getattr(error, "status_code", None) == 409:
            return False
        raise
    return True


def _message(row: Mapping[str, Any], payload: Payload) -> ChatMessage:
    return ChatMessage(
        id=message_id_of(row["RowKey"]),
        user_id=row["userId"],
        connection_id=row["connectionId"],
        time=row["time"],
        payload=payload,
        user_name=row.get("userName"),
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
