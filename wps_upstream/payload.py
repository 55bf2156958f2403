"""The data of a user event: its type, the bytes received, and their decoded value, checked once.

A `Payload` is made by `Payload.decode`, which validates the bytes for their data type. Everything after
that (storing, broadcasting, listing) uses the value it carries instead of decoding again.
"""

from __future__ import annotations

import base64
import json
import json.encoder
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from wps_upstream.errors import MessageTooLarge

MAX_MESSAGE_BYTES = 1_000_000
"""The largest payload the app accepts, checked on the raw bytes before anything decodes them. The store
holds every payload up to this size intact (docs/store.md); nothing is truncated."""

MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects a JSON message may have (docs/app.md)."""

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
        """Check `data` against `data_type` and decode it: MessageTooLarge over MAX_MESSAGE_BYTES (checked
        first, on the raw bytes), InvalidPayload saying what is wrong otherwise."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(len(data), MAX_MESSAGE_BYTES)
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
    """The one JSON value in `text`, held to what every JSON parser reads back the same way.

    InvalidPayload for anything else: not JSON (NaN and Infinity are not JSON), a number a double cannot
    hold (1e400 overflows, 1e-400 underflows to 0), a lone surrogate escape (\\ud800), or arrays and
    objects nested deeper than MAX_JSON_DEPTH.
    """
    try:
        value = _decode(text)
    except InvalidPayload:
        raise
    except RecursionError:  # the decoder recurses per level: far deeper than the limit, refuse the same way
        raise InvalidPayload(_TOO_DEEP) from None
    except ValueError as error:
        raise InvalidPayload(f"the JSON message is not valid JSON: {error}") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _nested_deeper_than(value, MAX_JSON_DEPTH):
        raise InvalidPayload(_TOO_DEEP)
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise InvalidPayload("the JSON message holds a lone surrogate (\\uD800-\\uDFFF without its pair)")
    return value


def _decode(text: str) -> Any:
    """`_DECODER.decode(text)`, without its two scans for surrounding whitespace when there is none."""
    if text and text[0] not in _JSON_WHITESPACE and text[-1] not in _JSON_WHITESPACE:
        value, end = _DECODER.raw_decode(text)
        if end == len(text):
            return value
    return _DECODER.decode(text)  # it raises the errors (such as "Extra data") the way it always has


_JSON_WHITESPACE = " \t\n\r"
_TOO_DEEP = f"the JSON message nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_NONZERO_DIGIT = re.compile(r"[1-9]")


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")  # Python accepts NaN/Infinity; JSON does not


def _double(literal: str) -> float:
    """A JSON number with a fraction or exponent as a double; InvalidPayload when it does not fit one."""
    number = float(literal)
    mantissa = literal.lower().partition("e")[0]
    if number in (float("inf"), float("-inf")) or (number == 0 and _NONZERO_DIGIT.search(mantissa)):
        raise InvalidPayload(f"the JSON message holds the number {literal[:40]}, which a double cannot hold")
    return number


# Built once: json.loads and json.dumps build a new decoder or encoder on every call that passes options.
_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_double)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _compact_encoder() -> Callable[[Any], str]:
    """`_ENCODER.encode`, without building a new C encoder on every call (JSONEncoder.encode does).

    The values the app encodes are built from parsed JSON and its own dicts, so they hold no cycles: the
    cycle check is left out. Where the C encoder is missing, JSONEncoder.encode is used as it is.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    chunks = make(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    return lambda value: "".join(chunks(value, 0))


_encode = _compact_encoder()


def _containers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [item for item in value.values() if isinstance(item, dict | list)]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict | list)]
    return []


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (walked without recursion)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [child for item in level for child in _containers(item)]
        if not level:
            return False
    return True


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) holds a surrogate code point, which UTF-8 cannot encode."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            strings = [item]
        elif isinstance(item, dict):
            strings = list(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            strings = []
            pending.extend(item)
        else:
            continue
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def json_dumps(value: Any) -> str:
    """Compact, strict JSON (NaN and Infinity refused), non-ASCII kept as is."""
    return _encode(value)
