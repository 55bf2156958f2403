"""JSON text checked strictly (RFC 8259) without building it and without recursion.

The service passes JSON data on as the client wrote it, so the emulator checks that a value is
JSON and keeps its exact text instead of decoding and re-encoding it (which turned `1e400` into
`Infinity`, failed on `"\\ud800"` and hit Python's recursion limit on deeply nested values).
Containers are tracked on an explicit stack, so any depth that fits in a frame is fine.
"""

from __future__ import annotations

import json
import re
from typing import Any

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Possessive quantifiers: a long unterminated string fails in one pass instead of backtracking.
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+"')
_SCALAR = re.compile(
    r'"(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+"'
    r"|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+(?![0-9.eE+-])"
    r"|(?:true|false|null)(?![A-Za-z0-9_])"
)
_CLOSING = {"{": "}", "[": "]"}


class JsonTextError(ValueError):
    """The text is not JSON; the message says what was expected where."""

    def __init__(self, what: str, position: int) -> None:
        super().__init__(f"{what} at position {position}")
        self.position = position


def check(text: str) -> None:
    """Raise JsonTextError unless `text` is one JSON value, optionally surrounded by whitespace."""
    end = _skip(text, value_end(text, _skip(text, 0)))
    if end != len(text):
        raise JsonTextError("expected the end of the JSON text", end)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# The C decoder finds where a value ends fastest; it only fails over to the scanner below on
# nesting deeper than Python's recursion limit, or to say what is wrong with invalid text.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def value_end(text: str, start: int) -> int:
    """The index just past the JSON value that begins at `start`; raises JsonTextError."""
    try:
        return _DECODER.raw_decode(text, start)[1]
    except (ValueError, RecursionError):
        return _scan_value_end(text, start)


def _scan_value_end(text: str, start: int) -> int:
    stack: list[str] = []  # the containers open around the current position
    pos = start
    while True:
        pos, opened = _value_or_opening(text, pos, stack)
        if opened:
            continue  # the container's first member comes next
        pos = _after_value(text, pos, stack)
        if not stack:
            return pos


def _value_or_opening(text: str, pos: int, stack: list[str]) -> tuple[int, bool]:
    """Scan a scalar or an empty container: (its end, False); or open a container: (next value, True)."""
    opening = text[pos : pos + 1]
    if opening in _CLOSING:
        inner = _skip(text, pos + 1)
        if text.startswith(_CLOSING[opening], inner):
            return inner + 1, False
        stack.append(opening)
        return (_member_value(text, inner) if opening == "{" else inner), True
    scalar = _SCALAR.match(text, pos)
    if scalar is None:
        raise JsonTextError("expected a JSON value", pos)
    return scalar.end(), False


def _after_value(text: str, pos: int, stack: list[str]) -> int:
    """Close the containers that end after a value; returns where the next value starts (or the end)."""
    while stack:
        pos = _skip(text, pos)
        char = text[pos : pos + 1]
        if char == _CLOSING[stack[-1]]:
            stack.pop()
            pos += 1
        elif char == ",":
            pos = _skip(text, pos + 1)
            return _member_value(text, pos) if stack[-1] == "{" else pos
        else:
            raise JsonTextError(f"expected ',' or '{_CLOSING[stack[-1]]}'", pos)
    return pos


def _member_name(text: str, pos: int) -> re.Match[str]:
    name = _STRING.match(text, pos)
    if name is None:
        raise JsonTextError("expected a member name in double quotes", pos)
    return name


def _member_value(text: str, pos: int) -> int:
    """Scan `"name" :` at `pos` and return where the member's value starts."""
    colon = _skip(text, _member_name(text, pos).end())
    if not text.startswith(":", colon):
        raise JsonTextError("expected ':'", colon)
    return _skip(text, colon + 1)


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def members(text: str) -> dict[str, str]:
    """The members of a JSON object, each value as its exact source text (a later name wins)."""
    pos = _skip(text, 0)
    if not text.startswith("{", pos):
        raise JsonTextError("expected a JSON object", pos)
    found: dict[str, str] = {}
    pos = _skip(text, pos + 1)
    if text.startswith("}", pos):
        pos += 1
    else:
        pos = _member_list(text, pos, found)
    end = _skip(text, pos)
    if end != len(text):
        raise JsonTextError("expected the end of the JSON text", end)
    return found


def _member_list(text: str, pos: int, found: dict[str, str]) -> int:
    while True:
        name = _member_name(text, pos)
        value_start = _member_value(text, pos)
        value_stop = value_end(text, value_start)
        found[json.loads(name.group())] = text[value_start:value_stop]
        pos = _skip(text, value_stop)
        if text.startswith("}", pos):
            return pos + 1
        if not text.startswith(",", pos):
            raise JsonTextError("expected ',' or '}'", pos)
        pos = _skip(text, pos + 1)


NESTED = object()  # what `scalar` answers for an object or array: never an int, str or bool


def scalar(value_text: str) -> Any:
    """A checked value's Python form if it is a string, number, true, false or null, else NESTED."""
    if value_text[:1] in _CLOSING:
        return NESTED
    return json.loads(value_text)
