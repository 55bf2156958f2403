"""Messages the service carries: their three data types and the one content type that carries each.

The same table serves every direction: a client's `event` goes upstream with the content type of
its data type, an upstream reply and a REST send come back with a data type read from theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DataType = Literal["text", "json", "binary"]

CONTENT_TYPES: dict[DataType, str] = {
    "json": "application/json",
    "text": "text/plain",
    "binary": "application/octet-stream",
}
SUPPORTED_CONTENT_TYPES = "application/json, text/plain or application/octet-stream"
_DATA_TYPES: dict[str, DataType] = {media: data_type for data_type, media in CONTENT_TYPES.items()}


def content_type_for(data_type: DataType) -> str:
    """The Content-Type header of data of this type (text says it is UTF-8)."""
    media = CONTENT_TYPES[data_type]
    return f"{media}; charset=utf-8" if data_type == "text" else media


def data_type_of(media_type: str) -> DataType | None:
    """The data type a media type (`text/plain`, no parameters) carries; None when unsupported."""
    return _DATA_TYPES.get(media_type.strip().lower())


def media_type(content_type: str) -> str:
    """`text/plain; charset=utf-8` -> `text/plain`."""
    return content_type.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class ServerMessage:
    """A message the service pushes to a client: from the server (REST, upstream reply) or a group."""

    data: bytes  # the payload as bytes: UTF-8 text, serialized JSON, or raw binary
    data_type: DataType
    source: Literal["server", "group"] = "server"
    group: str | None = None
    from_user_id: str | None = None
