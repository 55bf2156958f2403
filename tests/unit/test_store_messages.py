"""The chat message shape shared by broadcasts and /api/messages (DESIGN.md section 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from wps_upstream.messages import ChatMessage, DataType, iso_time, payload_problem


def _message(data_type: DataType, data: bytes) -> ChatMessage:
    return ChatMessage("id1", "alice", "conn1", "2026-11-29T06:07:08.123Z", data_type, data)


def test_text_message_json_carries_the_text() -> None:
    assert _message("text", "héllo 😀".encode()).to_json() == {
        "type": "message",
        "id": "id1",
        "userId": "alice",
        "connectionId": "conn1",
        "time": "2026-11-29T06:07:08.123Z",
        "dataType": "text",
        "data": "héllo 😀",
    }


def test_json_message_json_carries_the_parsed_value() -> None:
    assert _message("json", b'{"a": [1, "\xc3\xa9"]}').to_json()["data"] == {"a": [1, "é"]}


def test_binary_message_json_carries_standard_base64() -> None:
    assert _message("binary", b"\xfb\xff\x00").to_json()["data"] == "+/8A"


def test_iso_time_has_milliseconds_and_z() -> None:
    assert iso_time(datetime(2026, 11, 29, 6, 7, 8, 123999, UTC)) == "2026-11-29T06:07:08.123Z"


def test_iso_time_converts_to_utc() -> None:
    moment = datetime(2026, 11, 29, 8, 7, 8, tzinfo=timezone(timedelta(hours=2)))
    assert iso_time(moment) == "2026-11-29T06:07:08.000Z"


def test_iso_time_treats_naive_time_as_utc() -> None:
    assert iso_time(datetime(2026, 11, 29, 6, 7, 8)) == "2026-11-29T06:07:08.000Z"


@pytest.mark.parametrize(
    ("data_type", "data"),
    [("text", "é😀".encode()), ("json", b"[1]"), ("json", b'"x"'), ("binary", b"\xff"), ("text", b"")],
)
def test_valid_payload_has_no_problem(data_type: str, data: bytes) -> None:
    assert payload_problem(data_type, data) is None


@pytest.mark.parametrize(
    ("data_type", "data", "reason"),
    [
        ("text", b"\xff", "UTF-8"),
        ("json", b"{", "not valid JSON"),
        ("json", b"NaN", "not valid JSON"),
        ("json", b"", "not valid JSON"),
        ("xml", b"<a/>", "unknown data type"),
    ],
)
def test_invalid_payload_problem_says_why(data_type: str, data: bytes, reason: str) -> None:
    problem = payload_problem(data_type, data)
    assert problem is not None
    assert reason in problem
