"""Entity sizes as Azure Table storage counts them, and payloads split into binary chunks.

Azure counts strings in UTF-16 and charges property names and keys against the 1 MiB entity limit;
Azurite does not enforce that limit on inserts at all, so the app checks sizes itself (docs/store.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from wps_upstream import payload

ENTITY_SIZE_LIMIT = 1024 * 1024  # bytes, by the size formula in entity_size()
STRING_UNITS_LIMIT = 32 * 1024  # UTF-16 code units in one string property (64 KiB)
BINARY_PROPERTY_LIMIT = 64 * 1024  # bytes in one binary property
CUSTOM_PROPERTIES_LIMIT = 252
KEY_UNITS_LIMIT = 512  # UTF-16 code units in PartitionKey / RowKey (1 KiB)

# The largest payload stored intact (above 900 KiB). With ordinary user and connection ids the message
# entity then stays below Azure's 1 MiB; unusually long ids lower the limit for that message
# (MessageTooLarge.limit says by how much).
MAX_MESSAGE_BYTES = payload.MAX_MESSAGE_BYTES

CHUNK_BYTES = BINARY_PROPERTY_LIMIT
_CHUNK_NAME_LENGTH = 3  # d00 .. d15
_CHUNK_OVERHEAD = 8 + 2 * _CHUNK_NAME_LENGTH + 4  # per-property overhead, name, binary length


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


def chunk_name(index: int) -> str:
    """Name of the index-th payload property: d00, d01, ..."""
    return f"d{index:02d}"


def split_chunks(data: bytes) -> dict[str, bytes]:
    """The payload as binary properties of at most 64 KiB each; an empty payload has none."""
    return {chunk_name(i // CHUNK_BYTES): data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)}


def join_chunks(entity: Mapping[str, Any], count: int) -> bytes:
    """The payload back from `count` binary properties."""
    return b"".join(bytes(entity[chunk_name(i)]) for i in range(count))


def chunk_count(payload_bytes: int) -> int:
    """How many chunk properties a payload of this length takes."""
    return math.ceil(payload_bytes / CHUNK_BYTES)


def chunks_size(payload_bytes: int) -> int:
    """Bytes the chunk properties of a payload of this length add to an entity."""
    return payload_bytes + _CHUNK_OVERHEAD * chunk_count(payload_bytes)


def payload_capacity(envelope: Mapping[str, Any]) -> int:
    """The largest payload that fits beside `envelope` (the entity without chunks)."""
    room = ENTITY_SIZE_LIMIT - entity_size(envelope)
    # With k chunks a payload holds at most k * CHUNK_BYTES and pays k chunk overheads.
    best = max(
        (min(k * CHUNK_BYTES, room - k * _CHUNK_OVERHEAD) for k in range(1, room // CHUNK_BYTES + 2)),
        default=0,
    )
    return max(0, min(MAX_MESSAGE_BYTES, best))
