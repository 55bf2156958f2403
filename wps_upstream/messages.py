"""Chat messages as the app stores, broadcasts and lists them (DESIGN.md section 5)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

DataType = Literal["text", "json", "binary"]
DATA_TYPES: tuple[str, ...] = get_args(DataType)


@dataclass(frozen=True)
class ChatMessage:
    """One stored chat message; `data` holds exactly the bytes that were received."""

    id: str  # opaque, unique within the hub, stable across redeliveries
    user_id: str
    connection_id: str
    time: str  # ISO-8601 UTC with milliseconds and Z
    data_type: DataType
    data: bytes  # UTF-8 text, the JSON text as sent, or raw binary

    def to_json(self) -> dict[str, Any]:
        """The contract shape used for broadcasts and /api/messages.

        `data` is the text (text), the parsed JSON value (json) or standard base64 (binary).
        """
        return {
            "type": "message",
            "id": self.id,
            "userId": self.user_id,
            "connectionId": self.connection_id,
            "time": self.time,
            "dataType": self.data_type,
            "data": decode_data(self.data_type, self.data),
        }


def decode_data(data_type: DataType, data: bytes) -> Any:
    """The JSON value that represents `data` in the contract shape; ValueError if it does not decode."""
    if data_type == "text":
        return data.decode("utf-8")
    if data_type == "json":
        return _parse_json(data)
    if data_type == "binary":
        return base64.b64encode(data).decode("ascii")
    raise ValueError(f"unknown data type {data_type!r}; expected one of {', '.join(DATA_TYPES)}")


def payload_problem(data_type: str, data: bytes) -> str | None:
    """Why `data` is not a valid payload of `data_type`, or None when it is.

    Text must be UTF-8 and JSON must be one JSON value in UTF-8 (NaN and Infinity are not JSON), so that
    every stored message can be listed again.
    """
    if data_type not in DATA_TYPES:
        return f"unknown data type {data_type!r}; expected one of {', '.join(DATA_TYPES)}"
    if data_type == "binary":
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"{data_type} data is not valid UTF-8 (byte {error.start})"
    if data_type == "json":
        try:
            _parse_json(text)
        except ValueError as error:
            return f"json data is not valid JSON: {error}"
    return None


def iso_time(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and Z, e.g. 2026-11-29T06:07:08.123Z (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_json(data: bytes | str) -> Any:
    return json.loads(data, parse_constant=_reject_constant)
