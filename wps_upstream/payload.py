"""The data of a user event: its type, the bytes received, and their decoded value, checked once.

A `Payload` is made by `Payload.decode`, which validates the bytes for their data type. Everything after
that (storing, broadcasting, listing) uses the value it carries instead of decoding again.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

DataType = Literal["text", "json", "binary"]
DATA_TYPES: tuple[DataType, ...] = get_args(DataType)

# Content-Type media type <-> data type, both ways (the protocol's table for user events and replies).
CONTENT_TYPES: dict[str, DataType] = {
    "text/plain": "text",
    "application/json": "json",
    "application/octet-stream": "binary",
}
REPLY_CONTENT_TYPES: dict[DataType, str] = {
    "text": "text/plain; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "binary": "application/octet-stream",
}


class InvalidPayload(ValueError):
    """The bytes are not a valid payload of their data type; the message says why."""


@dataclass(frozen=True, slots=True)
class Payload:
    """Validated event data: `data` exactly as received, `value` what stands for it in the message shape.

    `value` is the text (text), the JSON value (json), or the standard base64 of the bytes (binary).
    """

    data_type: DataType
    data: bytes
    value: Any

    @classmethod
    def decode(cls, data_type: str, data: bytes) -> Payload:
        """Check `data` against `data_type` and build its JSON form; InvalidPayload says what is wrong."""
        if data_type == "binary":
            return cls("binary", data, base64.b64encode(data).decode("ascii"))
        if data_type not in DATA_TYPES:
            raise InvalidPayload(f"unknown data type {data_type!r}; expected one of {', '.join(DATA_TYPES)}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidPayload(f"the {data_type} message is not valid UTF-8 (byte {error.start})") from None
        if data_type == "text":
            return cls("text", data, text)
        return cls("json", data, parse_json(text))


def parse_json(text: str) -> Any:
    """The one JSON value in `text`; InvalidPayload unless it is valid JSON (NaN and Infinity are not)."""
    try:
        return json.loads(text, parse_constant=_not_json)
    except ValueError as error:
        raise InvalidPayload(f"the JSON message is not valid JSON: {error}") from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")  # Python accepts NaN/Infinity; JSON does not


def json_dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
