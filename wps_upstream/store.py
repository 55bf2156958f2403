"""Table storage for chat messages and presence (async `azure.data.tables.aio`, clients reused).

Layout, limits and the reasoning behind them: docs/store.md. In short:

- messages table, PartitionKey = the hub (escaped; with `partitions` > 1, hub + ``%p`` + a shard number
  taken from the event's claim hash). Two kinds of rows per partition:
  - message rows, RowKey ``m`` + 19-digit inverted ticks of the received time + 8 hex random, so a forward
    scan of the ``m`` range is newest first; the payload is raw bytes split into binary properties
    ``d00``, ``d01``, ... of at most 64 KiB each;
  - claim rows, RowKey ``x`` + SHA-256 hex of (connection id, ce-id), naming the message row. The claim and
    the message row are created in one entity-group transaction, so a redelivered event conflicts on its
    claim and gets the original message back; nothing is decided by reading first.
- presence table, PartitionKey = the hub, RowKey = the connection id (both escaped).

Sizes are checked the way Azure counts them (UTF-16 strings, property names and keys included), because
Azurite does not enforce the entity limit on inserts at all.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Self

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from wps_upstream.messages import ChatMessage, DataType, iso_time, payload_problem

# --- errors -------------------------------------------------------------------------------------------


class StoreError(Exception):
    """Base of every error this module raises on purpose."""


class StoreUnavailable(StoreError):
    """Table storage failed or timed out; the cause is chained. The app answers 5xx."""


class MessageTooLarge(StoreError):
    """The payload cannot be stored intact in one entity. The app answers 413."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the message is {size} bytes; the largest message that can be stored is {limit} bytes"
        )
        self.size = size
        self.limit = limit


class InvalidCursor(StoreError):
    """A `before` cursor that this store did not issue. The app answers 400."""


class InvalidMessage(StoreError, ValueError):
    """The payload does not match its data type (text not UTF-8, json not JSON). The app answers 400."""


# --- Azure Table storage limits (counted as Azure counts them) -----------------------------------------

ENTITY_SIZE_LIMIT = 1024 * 1024  # bytes, by the size formula in entity_size()
STRING_UNITS_LIMIT = 32 * 1024  # UTF-16 code units in one string property (64 KiB)
BINARY_PROPERTY_LIMIT = 64 * 1024  # bytes in one binary property
CUSTOM_PROPERTIES_LIMIT = 252
KEY_UNITS_LIMIT = 512  # UTF-16 code units in PartitionKey / RowKey (1 KiB)
QUERY_PAGE_LIMIT = 1000  # the most rows one query page returns

MAX_MESSAGE_BYTES = 1_000_000
"""The largest payload stored intact (above 900 KiB); larger ones raise MessageTooLarge. With ordinary
user and connection ids the message entity then stays below Azure's 1 MiB; unusually long ids lower the
limit for that message (MessageTooLarge.limit says by how much)."""

CHUNK_BYTES = BINARY_PROPERTY_LIMIT
_CHUNK_NAME_LENGTH = 3  # d00 .. d15
_CHUNK_OVERHEAD = 8 + 2 * _CHUNK_NAME_LENGTH + 4  # per-property overhead, name, binary length

_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")


def utf16_units(text: str) -> int:
    """Length of `text` as Azure counts strings: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def property_size(name: str, value: Any) -> int:
    """Bytes one property adds to an entity: 8 + 2 per name unit + the value's size."""
    return 8 + 2 * utf16_units(name) + _value_size(value)


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return 2 * utf16_units(value) + 4
    if isinstance(value, bytes | bytearray):
        return len(value) + 4
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float | datetime):
        return 8
    raise TypeError(f"no Table storage size known for {type(value).__name__}")


def entity_size(entity: Mapping[str, Any]) -> int:
    """The size Azure charges against the 1 MiB entity limit.

    4 bytes (Timestamp and system metadata) + 2 per key unit + for each property 8 + 2 per name unit +
    value (string: 2 per UTF-16 unit + 4; binary: length + 4; Int32 4; Int64, Double, DateTime 8; Bool 1).
    """
    keys = utf16_units(entity["PartitionKey"]) + utf16_units(entity["RowKey"])
    properties = sum(
        property_size(name, value) for name, value in entity.items() if name not in ("PartitionKey", "RowKey")
    )
    return 4 + 2 * keys + properties


def entity_problem(entity: Mapping[str, Any]) -> str | None:
    """Why Azure would refuse `entity` (a limit it exceeds), or None when it fits."""
    custom = [name for name in entity if name not in ("PartitionKey", "RowKey")]
    if len(custom) > CUSTOM_PROPERTIES_LIMIT:
        return f"{len(custom)} properties; the limit is {CUSTOM_PROPERTIES_LIMIT}"
    for name in custom:
        value = entity[name]
        if isinstance(value, str) and utf16_units(value) > STRING_UNITS_LIMIT:
            return f"property {name} has {utf16_units(value)} UTF-16 units; the limit is {STRING_UNITS_LIMIT}"
        if isinstance(value, bytes | bytearray) and len(value) > BINARY_PROPERTY_LIMIT:
            return f"property {name} has {len(value)} bytes; the limit is {BINARY_PROPERTY_LIMIT}"
    size = entity_size(entity)
    if size > ENTITY_SIZE_LIMIT:
        return f"the entity is {size} bytes; the limit is {ENTITY_SIZE_LIMIT}"
    return None


# --- payload chunks -------------------------------------------------------------------------------------


def chunk_name(index: int) -> str:
    """Name of the index-th payload property: d00, d01, ..."""
    return f"d{index:02d}"


def split_chunks(data: bytes) -> dict[str, bytes]:
    """The payload as binary properties of at most 64 KiB each; an empty payload has none."""
    return {chunk_name(i // CHUNK_BYTES): data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)}


def join_chunks(entity: Mapping[str, Any], count: int) -> bytes:
    """The payload back from `count` binary properties."""
    return b"".join(bytes(entity[chunk_name(i)]) for i in range(count))


def chunks_size(payload_bytes: int) -> int:
    """Bytes the chunk properties of a payload of this length add to an entity."""
    return payload_bytes + _CHUNK_OVERHEAD * math.ceil(payload_bytes / CHUNK_BYTES)


def payload_capacity(envelope: Mapping[str, Any]) -> int:
    """The largest payload that fits beside `envelope` (the entity without chunks)."""
    room = ENTITY_SIZE_LIMIT - entity_size(envelope)
    # With k chunks a payload holds at most k * CHUNK_BYTES and pays k chunk overheads.
    best = max(
        (min(k * CHUNK_BYTES, room - k * _CHUNK_OVERHEAD) for k in range(1, room // CHUNK_BYTES + 2)),
        default=0,
    )
    return max(0, min(MAX_MESSAGE_BYTES, best))


# --- keys -----------------------------------------------------------------------------------------------

# Characters Azure refuses in PartitionKey and RowKey, plus '%' so the escaping can be undone.
_KEY_ESCAPED = frozenset("/\\#?%") | {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))}

_MAX_TICKS = 3_155_378_975_999_999_999  # .NET DateTime.MaxValue.Ticks, 100 ns since 0001-01-01
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
MESSAGE_ROW_PREFIX = "m"
CLAIM_ROW_PREFIX = "x"
_MESSAGE_ROW_KEY = re.compile(r"m[0-9]{19}[0-9a-f]{8}")


def escape_key(value: str) -> str:
    """`value` as a PartitionKey/RowKey: forbidden characters (/ \\ # ? controls) and % become %XX."""
    escaped = "".join(f"%{ord(c):02X}" if c in _KEY_ESCAPED else c for c in value)
    if utf16_units(escaped) > KEY_UNITS_LIMIT:
        raise ValueError(f"key too long for Table storage: {utf16_units(escaped)} UTF-16 units, limit 512")
    return escaped


def unescape_key(key: str) -> str:
    """Undo escape_key."""
    return re.sub(r"%([0-9A-F]{2})", lambda match: chr(int(match[1], 16)), key)


def ticks(moment: datetime) -> int:
    """100-nanosecond ticks since 0001-01-01 UTC (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def message_row_key(received_at: datetime, suffix: str | None = None) -> str:
    """``m`` + inverted ticks (newer sorts first) + 8 hex characters that keep one tick's messages apart."""
    suffix = secrets.token_hex(4) if suffix is None else suffix
    return f"{MESSAGE_ROW_PREFIX}{_MAX_TICKS - ticks(received_at):019d}{suffix}"


def claim_row_key(connection_id: str, event_id: str) -> str:
    """``x`` + SHA-256 hex of the event's idempotency key (connection id, ce-id), unambiguously joined."""
    material = f"{len(connection_id)}:{connection_id}:{event_id}".encode("utf-8", "surrogatepass")
    return CLAIM_ROW_PREFIX + hashlib.sha256(material).hexdigest()


MAX_PARTITIONS = 64


def message_partition(hub: str, shard: int) -> str:
    """PartitionKey of a hub's shard: the escaped hub for shard 0, then hub + ``%p`` + the shard number.

    Escaped hubs contain ``%`` only before two uppercase hex digits, so ``%p`` never meets another hub.
    """
    hub_key = escape_key(hub)
    return hub_key if shard == 0 else f"{hub_key}%p{shard}"


def shard_of(claim_key: str, partitions: int) -> int:
    """The shard of an event, from its claim key: redeliveries land in the same partition as the claim."""
    return int(claim_key[len(CLAIM_ROW_PREFIX) : len(CLAIM_ROW_PREFIX) + 8], 16) % partitions


# --- history cursors ------------------------------------------------------------------------------------

_CURSOR_VERSION = "1."
_CURSOR_MAX_LENGTH = 100


def encode_cursor(row_key: str) -> str:
    """The opaque `before` cursor that continues after the message row `row_key`."""
    return _CURSOR_VERSION + base64.urlsafe_b64encode(row_key.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The message row key inside a cursor from encode_cursor; InvalidCursor for anything else."""
    if len(cursor) > _CURSOR_MAX_LENGTH or not cursor.startswith(_CURSOR_VERSION):
        raise InvalidCursor("the cursor is not one this service issued; use the `next` value of a page")
    body = cursor[len(_CURSOR_VERSION) :]
    try:
        row_key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidCursor("the cursor is malformed; use the `next` value of a page") from error
    if not _MESSAGE_ROW_KEY.fullmatch(row_key):
        raise InvalidCursor("the cursor is malformed; use the `next` value of a page")
    return row_key


# --- clients --------------------------------------------------------------------------------------------


def _check_table_name(name: str) -> None:
    if not _TABLE_NAME.fullmatch(name) or name.lower() == "tables":
        raise ValueError(f"invalid table name {name!r}: 3-63 letters and digits, starting with a letter")


class _Table:
    """One table: the service client built once, the table created on first use."""

    def __init__(self, connection_string: str, table_name: str, timeout_s: float, retries: int) -> None:
        _check_table_name(table_name)
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
                        raise _unavailable(f"creating table {self.name}", error) from error
                    self._created = True
        return self._client

    async def close(self) -> None:
        await self._client.close()
        await self._service.close()


class _TableStore:
    """What both stores share: one table, its endpoint, closing, and `async with`."""

    def __init__(self, table: _Table) -> None:
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


def _unavailable(action: str, error: BaseException) -> StoreUnavailable:
    detail = str(error).splitlines()[0] if str(error) else ""
    return StoreUnavailable(f"Table storage failed while {action}: {type(error).__name__}: {detail}".rstrip())


# --- messages -------------------------------------------------------------------------------------------

_SCHEMA_VERSION = 1
_KEY_ATTEMPTS = 3


class MessageStore(_TableStore):
    """Chat history of each hub: idempotent appends and newest-first pages."""

    def __init__(self, table: _Table, partitions: int = 1) -> None:
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}, not {partitions}")
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
        return cls(_Table(connection_string, table_name, timeout_s, retries), partitions)

    async def append(
        self,
        *,
        hub: str,
        connection_id: str,
        event_id: str,
        user_id: str,
        data_type: DataType,
        data: bytes,
        received_at: datetime,
    ) -> tuple[ChatMessage, bool]:
        """Store once per (hub, connection_id, event_id); returns (message, created).

        A redelivery (even with another received_at) returns the originally stored message and
        created=False. The message row and its claim row are written in one transaction.
        """
        problem = payload_problem(data_type, data)
        if problem:
            raise InvalidMessage(problem)
        _check_ids(user_id=user_id, connection_id=connection_id)
        claim_key = claim_row_key(connection_id, event_id)
        partition = message_partition(hub, shard_of(claim_key, self._partitions))
        envelope: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": message_row_key(received_at),
            "v": _SCHEMA_VERSION,
            "userId": user_id,
            "connectionId": connection_id,
            "time": iso_time(received_at),
            "dataType": data_type,
            "size": len(data),
            "chunks": math.ceil(len(data) / CHUNK_BYTES),
        }
        capacity = payload_capacity(envelope)
        if len(data) > capacity:
            raise MessageTooLarge(len(data), capacity)
        chunks = split_chunks(data)
        table = await self._table.client()
        for _ in range(_KEY_ATTEMPTS):
            claim = {"PartitionKey": partition, "RowKey": claim_key, "message": envelope["RowKey"]}
            try:
                await table.submit_transaction([("create", envelope | chunks), ("create", claim)])
            except AzureError as error:
                if getattr(error, "status_code", None) != 409:
                    raise _unavailable("storing a message", error) from error
                stored = await self._claimed(table, partition, claim_key)
                if stored is not None:
                    return stored, False
                # No claim: the random suffix met another message of the same tick. Draw again
                # (every row key has the same length, so the size check above still holds).
                envelope["RowKey"] = message_row_key(received_at)
                continue
            return _message(envelope["RowKey"], envelope, data), True
        raise StoreUnavailable("Table storage kept refusing new message keys as already taken")

    async def _claimed(self, table: TableClient, partition: str, claim_key: str) -> ChatMessage | None:
        """The message an existing claim names, or None when there is no such claim."""
        try:
            claim = await table.get_entity(partition, claim_key)
            row = await table.get_entity(partition, claim["message"])
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise _unavailable("reading a stored message", error) from error
        return _message_from_row(row)

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
            if len(rows) > limit:
                more = True
            else:
                # Only a partition that filled its own page can hold older rows beyond it.
                full = [
                    pk for pk, shard_rows in zip(partitions, found, strict=True) if len(shard_rows) == limit
                ]
                more = any(
                    await asyncio.gather(*(_has_rows_after(table, pk, page[-1]["RowKey"]) for pk in full))
                )
        except AzureError as error:
            raise _unavailable("reading messages", error) from error
        cursor = encode_cursor(page[-1]["RowKey"]) if more else None
        return [_message_from_row(row) for row in page], cursor


_MESSAGES_AFTER = "PartitionKey eq @pk and RowKey gt @after and RowKey lt @end"


def _range(partition: str, after: str) -> dict[str, str]:
    # 'n' is the first key after every 'm...' row key: claim rows ('x...') never show up.
    return {"pk": partition, "after": after, "end": "n"}


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


async def _has_rows_after(table: TableClient, partition: str, after: str) -> bool:
    """Whether the partition holds a message row older than `after` (a keys-only probe of one row)."""
    probe = table.query_entities(
        _MESSAGES_AFTER, parameters=_range(partition, after), results_per_page=1, select=["RowKey"]
    )
    async for _ in probe:
        return True
    return False


def _check_ids(**ids: str) -> None:
    # Ids come from the service and the app validates user ids; this only guards Azure's string limit.
    for name, value in ids.items():
        if utf16_units(value) > STRING_UNITS_LIMIT:
            raise ValueError(f"{name} is too long for Table storage ({utf16_units(value)} UTF-16 units)")


def _message(row_key: str, envelope: Mapping[str, Any], data: bytes) -> ChatMessage:
    return ChatMessage(
        id=row_key[len(MESSAGE_ROW_PREFIX) :],
        user_id=envelope["userId"],
        connection_id=envelope["connectionId"],
        time=envelope["time"],
        data_type=envelope["dataType"],
        data=data,
    )


def _message_from_row(row: Mapping[str, Any]) -> ChatMessage:
    data = join_chunks(row, int(row["chunks"]))
    if len(data) != int(row["size"]):
        raise StoreUnavailable(
            f"stored message {row['RowKey']} is incomplete: {len(data)} of {row['size']} bytes"
        )
    return _message(row["RowKey"], row, data)


# --- presence -------------------------------------------------------------------------------------------


class PresenceStore(_TableStore):
    """Who is connected to each hub: one row per connection, upserted and deleted idempotently."""

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
        return cls(_Table(connection_string, table_name, timeout_s, retries))

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
            raise _unavailable("recording a connection", error) from error

    async def disconnected(self, *, hub: str, connection_id: str) -> None:
        """Forget the connection; forgetting an unknown connection is fine."""
        table = await self._table.client()
        try:
            await table.delete_entity(escape_key(hub), escape_key(connection_id))
        except ResourceNotFoundError:
            pass
        except AzureError as error:
            raise _unavailable("removing a connection", error) from error

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
            raise _unavailable("listing connections", error) from error
