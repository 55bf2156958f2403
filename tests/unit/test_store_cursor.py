"""History cursors: opaque to clients, validated on the way back in."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from wps_upstream.store.cursors import decode_cursor, encode_cursor
from wps_upstream.store.errors import InvalidCursor
from wps_upstream.store.keys import claim_row_key, message_row_key

ROW_KEY = message_row_key(datetime(2026, 11, 29, 6, 7, 8, tzinfo=UTC))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_cursor_round_trips_to_the_row_key() -> None:
    assert decode_cursor(encode_cursor(ROW_KEY)) == ROW_KEY


def test_cursor_is_url_safe() -> None:
    cursor = encode_cursor(ROW_KEY)
    assert cursor.replace(".", "").replace("-", "").replace("_", "").isalnum()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "1.",
        "1.!!!",
        "1.a",
        "2." + _b64(ROW_KEY),
        _b64(ROW_KEY),
        "1." + _b64(claim_row_key("conn", "1")),
        "1." + _b64(ROW_KEY + "0"),
        "1." + _b64("m" + "9" * 19 + "ZZZZZZZZ"),
        "1." + base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "1." + "A" * 500,
    ],
)
def test_cursor_this_store_did_not_issue_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
