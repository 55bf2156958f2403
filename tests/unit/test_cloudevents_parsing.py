"""Requests from tests/events/ -> typed events or the refusal the protocol layer must give."""

from __future__ import annotations

import pytest

from tests.events.vectors import AUTH, HUB, load
from wps_upstream.cloudevents import (
    ConnectedEvent,
    ConnectEvent,
    DisconnectedEvent,
    Event,
    EventKind,
    UserEvent,
    classify,
    parse_event,
)
from wps_upstream.errors import AppError, BadRequest, Forbidden, Unauthorized, UnsupportedMediaType


def parse(name: str) -> Event:
    vector = load(name)
    return parse_event(vector.headers, vector.body, hub=HUB, auth=AUTH)


def refusal(name: str) -> AppError:
    with pytest.raises(AppError) as caught:
        parse(name)
    return caught.value


def test_connect_is_parsed_with_user_and_offered_subprotocols() -> None:
    event = parse("connect")
    assert isinstance(event, ConnectEvent)
    assert event.context.kind is EventKind.CONNECT
    assert (event.context.hub, event.context.connection_id, event.context.user_id) == ("chat", "conn1", "u1")
    assert event.subprotocols == ("json.webpubsub.azure.v1",)
    assert event.claims["sub"] == ["u1"]
    assert event.query == {"access_token": ["REDACTED"]}


def test_connected_is_parsed() -> None:
    event = parse("connected")
    assert isinstance(event, ConnectedEvent)
    assert event.context.event_id == "2"


def test_disconnected_carries_its_reason() -> None:
    event = parse("disconnected")
    assert isinstance(event, DisconnectedEvent)
    assert event.reason == "client closed"


def test_disconnected_without_body_has_no_reason() -> None:
    event = parse("disconnected-empty-body")
    assert isinstance(event, DisconnectedEvent)
    assert event.reason is None


def test_text_message_is_text_data() -> None:
    event = parse("message-text")
    assert isinstance(event, UserEvent)
    assert (event.payload.data_type, event.payload.data, event.payload.value) == ("text", b"hi", "hi")
    assert event.context.event_name == "message"


def test_json_message_keeps_the_json_text_as_sent() -> None:
    event = parse("message-json")
    assert isinstance(event, UserEvent)
    assert (event.payload.data_type, event.payload.data, event.payload.value) == (
        "json",
        b'{"a":1}',
        {"a": 1},
    )


def test_json_message_may_be_a_scalar() -> None:
    event = parse("message-json-true")
    assert isinstance(event, UserEvent)
    assert event.payload.value is True


def test_binary_message_is_the_raw_bytes() -> None:
    event = parse("message-binary")
    assert isinstance(event, UserEvent)
    assert (event.payload.data_type, event.payload.data) == ("binary", b"\x00\xff")


def test_message_without_content_type_is_binary() -> None:
    event = parse("message-without-content-type")
    assert isinstance(event, UserEvent)
    assert (event.payload.data_type, event.payload.data) == ("binary", b"\x01\x02")


def test_custom_event_is_a_user_event_with_its_name() -> None:
    event = parse("custom-event")
    assert isinstance(event, UserEvent)
    assert event.context.event_name == "typing"


def test_request_without_awpsversion_is_accepted() -> None:
    assert isinstance(parse("message-without-awpsversion"), UserEvent)


def test_hub_is_compared_case_insensitively() -> None:
    assert isinstance(parse("hub-other-case"), ConnectEvent)


def test_connection_state_is_decoded_into_the_context() -> None:
    assert parse("connect-with-state").context.states == {"key": "a"}


def test_user_event_carries_the_connection_state_too() -> None:
    assert parse("message-with-state").context.states == {"key": "a"}


@pytest.mark.parametrize(
    ("name", "header"),
    [("not-webpubsub", "ce-type"), ("missing-hub", "ce-hub"), ("missing-connection-id", "ce-connectionId")],
)
def test_request_that_is_not_a_web_pubsub_event_is_refused_naming_the_missing_header(
    name: str, header: str
) -> None:
    error = refusal(name)
    assert isinstance(error, BadRequest)
    assert header in error.message


def test_event_without_origin_is_refused_naming_the_header() -> None:
    error = refusal("missing-origin")
    assert isinstance(error, BadRequest)
    assert "WebHook-Request-Origin" in error.message


def test_event_from_another_origin_is_forbidden() -> None:
    assert isinstance(refusal("other-origin"), Forbidden)


@pytest.mark.parametrize("name", ["signature-missing", "signature-empty"])
def test_event_without_signature_is_unauthorized(name: str) -> None:
    error = refusal(name)
    assert isinstance(error, Unauthorized)
    assert "missing" in error.message


@pytest.mark.parametrize("name", ["signature-forged", "signature-other-connection", "signature-base64-key"])
def test_event_with_wrong_signature_is_unauthorized(name: str) -> None:
    error = refusal(name)
    assert isinstance(error, Unauthorized)
    assert "does not match" in error.message


@pytest.mark.parametrize("name", ["signature-uppercase", "signature-secondary"])
def test_signature_variants_the_service_may_send_are_accepted(name: str) -> None:
    assert isinstance(parse(name), ConnectEvent)


def test_event_for_another_hub_is_refused_naming_both_hubs() -> None:
    error = refusal("wrong-hub")
    assert isinstance(error, BadRequest)
    assert "'chat'" in error.message and "'other'" in error.message


@pytest.mark.parametrize("name", ["unknown-system-event", "other-event-type", "group-joined"])
def test_unknown_event_type_is_refused(name: str) -> None:
    error = refusal(name)
    assert isinstance(error, BadRequest)
    assert "Unsupported event type" in error.message


def test_checks_run_in_order_signature_before_hub() -> None:
    vector = load("wrong-hub").with_headers(ce_signature=None)
    with pytest.raises(Unauthorized):
        parse_event(vector.headers, vector.body, hub=HUB, auth=AUTH)


def test_checks_run_in_order_origin_before_signature() -> None:
    vector = load("signature-forged").with_headers(WebHook_Request_Origin="evil.example.com")
    with pytest.raises(Forbidden):
        parse_event(vector.headers, vector.body, hub=HUB, auth=AUTH)


def test_connect_with_invalid_json_is_a_bad_request() -> None:
    error = refusal("connect-invalid-json")
    assert isinstance(error, BadRequest)
    assert "JSON" in error.message


def test_unsupported_content_type_is_refused_with_415() -> None:
    error = refusal("message-xml")
    assert isinstance(error, UnsupportedMediaType)
    assert "application/xml" in error.message


def test_charset_other_than_utf8_is_refused_saying_so() -> None:
    error = refusal("message-latin1")
    assert isinstance(error, UnsupportedMediaType)
    assert "UTF-8" in error.message and "iso-8859-1" in error.message


def test_text_that_is_not_utf8_is_a_bad_request() -> None:
    assert isinstance(refusal("message-invalid-utf8"), BadRequest)


def test_json_message_that_is_not_json_is_a_bad_request() -> None:
    assert isinstance(refusal("message-invalid-json"), BadRequest)


def test_json_message_with_nan_is_not_json() -> None:
    vector = load("message-json").with_body(b"NaN")
    with pytest.raises(BadRequest):
        parse_event(vector.headers, vector.body, hub=HUB, auth=AUTH)


def test_user_event_without_event_id_is_a_bad_request() -> None:
    error = refusal("message-without-event-id")
    assert isinstance(error, BadRequest)
    assert "ce-id" in error.message


def test_header_names_are_case_insensitive() -> None:
    vector = load("message-text")
    upper = {name.upper(): value for name, value in vector.headers.items()}
    event = parse_event(upper, vector.body, hub=HUB, auth=AUTH)
    assert isinstance(event, UserEvent)


@pytest.mark.parametrize(
    ("ce_type", "kind"),
    [
        ("azure.webpubsub.sys.connect", EventKind.CONNECT),
        ("azure.webpubsub.sys.connected", EventKind.CONNECTED),
        ("azure.webpubsub.sys.disconnected", EventKind.DISCONNECTED),
        ("azure.webpubsub.user.message", EventKind.USER),
        ("azure.webpubsub.user.", EventKind.UNKNOWN),
        ("azure.webpubsub.gp.joined", EventKind.UNKNOWN),
        (None, EventKind.UNKNOWN),
    ],
)
def test_classification_by_ce_type(ce_type: str | None, kind: EventKind) -> None:
    assert classify(ce_type) is kind


def test_every_vector_on_disk_is_used_by_a_test() -> None:
    from pathlib import Path

    from tests.events.vectors import names

    sources = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    unused = [name for name in names() if f'"{name}"' not in sources]
    assert unused == []
