"""PartitionKey and RowKey design for the message and presence tables (docs/store.md).

- Message rows: ``m`` + 19-digit inverted ticks of the received time + 8 hex random, so a forward scan of
  the ``m`` range is newest first.
- Claim rows: ``x`` + SHA-256 hex of (connection id, ce-id), naming the message row.
- A hub's history lives in the partition named after the hub, or spreads over shards ``<hub>%p<n>``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

from wps_upstream.store.sizes import KEY_UNITS_LIMIT, utf16_units
from wps_upstream.times import as_utc

# Characters Azure refuses in PartitionKey and RowKey, plus '%' so the escaping can be undone.
_KEY_ESCAPED = frozenset("/\\#?%") | {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))}

_MAX_TICKS = 3_155_378_975_999_999_999  # .NET DateTime.MaxValue.Ticks, 100 ns since 0001-01-01
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
MESSAGE_ROW_PREFIX = "m"
MESSAGE_ROWS_END = "n"  # the first key after every message row key: a range scan below it skips claims
CLAIM_ROW_PREFIX = "x"
MESSAGE_ROW_KEY = re.compile(r"m[0-9]{19}[0-9a-f]{8}")


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
    delta = as_utc(moment) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def message_row_key(received_at: datetime, suffix: str | None = None) -> str:
    """``m`` + inverted ticks (newer sorts first) + 8 hex characters that keep one tick's messages apart."""
    suffix = secrets.token_hex(4) if suffix is None else suffix
    return f"{MESSAGE_ROW_PREFIX}{_MAX_TICKS - ticks(received_at):019d}{suffix}"


def row_key_ticks(row_key: str) -> int:
    """The received time of a message row, as ticks (the inverse of message_row_key's time part)."""
    return _MAX_TICKS - int(row_key[len(MESSAGE_ROW_PREFIX) : len(MESSAGE_ROW_PREFIX) + 19])


def ticks_row_key(moment_ticks: int) -> str:
    """The row key prefix of a time given in ticks: every message received later sorts before it."""
    return f"{MESSAGE_ROW_PREFIX}{_MAX_TICKS - moment_ticks:019d}"


def message_id(row_key: str) -> str:
    """The opaque message id of a message row: its row key without the prefix."""
    return row_key[len(MESSAGE_ROW_PREFIX) :]


def claim_row_key(connection_id: str, event_id: str) -> str:
    """``x`` + SHA-256 hex of the event's idempotency key (connection id, ce-id), unambiguously joined."""
    material = f"{len(connection_id)}:{connection_id}:{event_id}".encode("utf-8", "surrogatepass")
    return CLAIM_ROW_PREFIX + hashlib.sha256(material).hexdigest()


def content_digest(user_id: str, data_type: str, data: bytes) -> str:
    """SHA-256 hex of what a message row holds (user, data type, data), recorded in its claim, so that a
    redelivery can be told from another event reusing the same id."""
    head = f"{len(user_id)}:{user_id}:{data_type}:".encode("utf-8", "surrogatepass")
    return hashlib.sha256(head + data).hexdigest()


def message_partition(hub: str, shard: int) -> str:
    """PartitionKey of a hub's shard: the escaped hub for shard 0, then hub + ``%p`` + the shard number.

    Escaped hubs contain ``%`` only before two uppercase hex digits, so ``%p`` never meets another hub.
    """
    hub_key = escape_key(hub)
    return hub_key if shard == 0 else f"{hub_key}%p{shard}"


def shard_of(claim_key: str, partitions: int) -> int:
    """The shard of an event, from its claim key: redeliveries land in the same partition as the claim."""
    return int(claim_key[len(CLAIM_ROW_PREFIX) : len(CLAIM_ROW_PREFIX) + 8], 16) % partitions
