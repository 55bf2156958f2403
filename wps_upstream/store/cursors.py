"""Opaque paging cursors: a message row key, versioned and base64url-encoded."""

from __future__ import annotations

import base64

from wps_upstream.store.errors import InvalidCursor
from wps_upstream.store.keys import MESSAGE_ROW_KEY

_CURSOR_VERSION = "1."
_CURSOR_MAX_LENGTH = 100


def encode_cursor(row_key: str) -> str:
    """The opaque `before` cursor that continues after the message row `row_key`."""
    return _CURSOR_VERSION + base64.urlsafe_b64encode(row_key.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The message row key inside a cursor from encode_cursor; InvalidCursor for anything else."""
    if len(cursor) > _CURSOR_MAX_LENGTH or not cursor.startswith(_CURSOR_VERSION):
        raise InvalidCursor("is not one this app issued")
    body = cursor[len(_CURSOR_VERSION) :]
    try:
        row_key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidCursor("is malformed") from error
    if not MESSAGE_ROW_KEY.fullmatch(row_key):
        raise InvalidCursor("is malformed")
    return row_key
