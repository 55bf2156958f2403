"""The chat message shape shared by broadcasts and /api/messages, and payloads checked once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from wps_upstream.chat import ChatMessage, PresenceNotice
from wps_upstream.payload import InvalidPayload, Payload
from wps_upstream.times import event_time, iso_time


def _message(data_type: str, data: bytes) -> ChatMessage:
    return ChatMessage("id1", "alice", "conn1", "2026-11-29T06:07:08.123Z", Payload.decode(data_type, data))


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


def test_payload_keeps_the_bytes_exactly_as_received() -> None:
    assert Payload.decode("json", b' {"a" : 1} ').data == b' {"a" : 1} '


def test_presence_notice_has_a_reason_only_when_given() -> None:
    assert "reason" not in PresenceNotice("disconnected", "u1", "c1", "t", "offline").to_json()
    assert PresenceNotice("disconnected", "u1", "c1", "t", "offline", "bye").to_json()["reason"] == "bye"


def test_iso_time_has_milliseconds_and_z() -> None:
    assert iso_time(datetime(2026, 11, 29, 6, 7, 8, 123999, UTC)) == "2026-11-29T06:07:08.123Z"


def test_iso_time_converts_to_utc() -> None:
    moment = datetime(2026, 11, 29, 8, 7, 8, tzinfo=timezone(timedelta(hours=2)))
    assert iso_time(moment) == "2026-11-29T06:07:08.000Z"


def test_iso_time_treats_naive_time_as_utc() -> None:
    assert iso_time(datetime(2026, 11, 29, 6, 7, 8)) == "2026-11-29T06:07:08.000Z"


def test_event_time_is_the_ce_time_in_the_app_format() -> None:
    assert event_time("2026-11-29T06:07:08Z") == "2026-11-29T06:07:08.000Z"


@pytest.mark.parametrize(
    ("data_type", "data"),
    [("text", "é😀".encode()), ("json", b"[1]"), ("json", b'"x"'), ("binary", b"\xff"), ("text", b"")],
)
def test_valid_payload_decodes(data_type: str, data: bytes) -> None:
    assert Payload.decode(data_type, data).data == data


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
def test_invalid_payload_says_why(data_type: str, data: bytes, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        Payload.decode(data_type, data)
