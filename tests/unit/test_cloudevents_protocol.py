"""Abuse protection, signatures, connection state and response shapes (protocol reference conformance)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.events.vectors import AUTH, DEFAULT_KEY, ORIGIN, load
from wps_upstream.cloudevents import (
    acknowledged,
    choose_subprotocol,
    connect_accepted,
    decode_state,
    encode_state,
    no_content,
    preflight,
    refused,
    user_event_reply,
)
from wps_upstream.errors import BadRequest, Forbidden
from wps_upstream.webhook_auth import WebhookAuth, expected_signature, verify_signature

CONN1_SIGNATURE = "8de7281e588e23b0a30a7180ffa240257b8176e983004c240c9f3f7a7233c993"

# --- abuse protection ---


def test_preflight_from_the_service_echoes_its_origin() -> None:
    response = preflight(load("preflight").headers, WebhookAuth.of({ORIGIN, "localhost:8080"}, DEFAULT_KEY))
    assert response.status == 200
    assert response.headers == (("WebHook-Allowed-Origin", ORIGIN),)
    assert response.body == b""


def test_preflight_without_awpsversion_is_answered_too() -> None:
    response = preflight(load("preflight-without-awpsversion").headers, AUTH)
    assert response.status == 200


def test_preflight_without_origin_is_a_bad_request_naming_the_header() -> None:
    with pytest.raises(BadRequest, match="WebHook-Request-Origin"):
        preflight(load("preflight-without-origin").headers, AUTH)


def test_preflight_from_another_origin_is_forbidden_with_a_clear_message() -> None:
    with pytest.raises(Forbidden, match=r"evil\.example\.com"):
        preflight(load("preflight-other-origin").headers, AUTH)


def test_origin_refusal_names_the_origins_this_app_accepts() -> None:
    auth = WebhookAuth.of({"localhost:8080", "localhost"}, DEFAULT_KEY)
    with pytest.raises(Forbidden, match="accepts localhost, localhost:8080"):
        preflight({"WebHook-Request-Origin": "127.0.0.1:8080"}, auth)


def test_preflight_origin_is_matched_case_insensitively_and_keeps_the_port() -> None:
    headers = {"WebHook-Request-Origin": "X.WebPubSub.Azure.com:8443"}
    response = preflight(headers, WebhookAuth.of({"x.webpubsub.azure.com:8443"}, DEFAULT_KEY))
    assert response.headers == (("WebHook-Allowed-Origin", "x.webpubsub.azure.com:8443"),)


def test_preflight_accepts_an_allowed_entry_among_several_origins() -> None:
    response = preflight({"WebHook-Request-Origin": "a.com, xxx.webpubsub.azure.com"}, AUTH)
    assert response.headers == (("WebHook-Allowed-Origin", ORIGIN),)


# --- signature ---


def test_signature_is_hmac_sha256_of_the_connection_id_keyed_with_the_key_string() -> None:
    assert expected_signature(DEFAULT_KEY, "conn1") == CONN1_SIGNATURE
    assert expected_signature("key2", "conn1") == (
        "6da954dcc5003586f68abcbd10975be2f524bc7b12f3343a6a7daf0a5955836f"
    )


def test_valid_signature_is_accepted() -> None:
    assert verify_signature(f"sha256={CONN1_SIGNATURE}", "conn1", DEFAULT_KEY)


def test_upper_case_signature_is_accepted() -> None:
    assert verify_signature(f"SHA256={CONN1_SIGNATURE.upper()}", "conn1", DEFAULT_KEY)


def test_a_match_in_the_secondary_entry_is_accepted() -> None:
    assert verify_signature(f"sha256={'0' * 64},sha256={CONN1_SIGNATURE}", "conn1", DEFAULT_KEY)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        CONN1_SIGNATURE,  # no scheme
        f"sha1={CONN1_SIGNATURE}",
        f"sha256={CONN1_SIGNATURE[:-2]}",
        f"sha256={CONN1_SIGNATURE}x",
        "sha256=é",
    ],
)
def test_missing_or_malformed_signature_is_rejected(header: str | None) -> None:
    assert not verify_signature(header, "conn1", DEFAULT_KEY)


def test_signature_of_another_connection_is_rejected() -> None:
    assert not verify_signature(f"sha256={CONN1_SIGNATURE}", "conn2", DEFAULT_KEY)


def test_signature_made_with_base64_decoded_key_bytes_is_rejected() -> None:
    import hashlib
    import hmac

    digest = hmac.new(base64.b64decode(DEFAULT_KEY), b"conn1", hashlib.sha256).hexdigest()
    assert not verify_signature(f"sha256={digest}", "conn1", DEFAULT_KEY)


# --- connection state ---


def test_state_is_decoded_from_base64_json() -> None:
    assert decode_state("eyJrZXkiOiJhIn0=") == {"key": "a"}


@pytest.mark.parametrize(
    "value",
    [None, "", "not base64!", base64.b64encode(b"not json").decode(), base64.b64encode(b"[1]").decode()],
)
def test_missing_or_invalid_state_is_an_empty_map(value: str | None) -> None:
    assert decode_state(value) == {}


def test_state_is_encoded_as_compact_json_in_insertion_order() -> None:
    states = {"k1": "v1", "k2": "v2"}
    states["k1"] = ["v3"]
    states["k3"] = ""
    encoded = encode_state(states)
    assert base64.b64decode(encoded) == b'{"k1":["v3"],"k2":"v2","k3":""}'


def test_state_round_trips_non_ascii_text() -> None:
    assert decode_state(encode_state({"name": "Zoë 😀"})) == {"name": "Zoë 😀"}


# --- responses ---


def test_connect_without_anything_to_say_is_204() -> None:
    response = connect_accepted()
    assert (response.status, response.body, response.headers) == (204, b"", ())


def test_connect_with_user_is_200_json() -> None:
    response = connect_accepted(user_id="vic")
    assert response.status == 200
    assert response.content_type == "application/json; charset=utf-8"
    assert response.body == b'{"userId":"vic"}'


def test_connect_with_groups_roles_and_subprotocol() -> None:
    response = connect_accepted(
        user_id="u", groups=["g1"], roles=["webpubsub.sendToGroup.g1"], subprotocol="json.webpubsub.azure.v1"
    )
    assert json.loads(response.body) == {
        "userId": "u",
        "groups": ["g1"],
        "roles": ["webpubsub.sendToGroup.g1"],
        "subprotocol": "json.webpubsub.azure.v1",
    }


def test_connect_response_sets_state_when_given() -> None:
    response = connect_accepted(user_id="vic", states={"n": 1})
    assert response.headers == (("ce-connectionState", base64.b64encode(b'{"n":1}').decode()),)


def test_refusal_is_the_status_and_a_plain_text_reason() -> None:
    response = refused(401, "bad token")
    assert (response.status, response.body) == (401, b"bad token")
    assert response.content_type == "text/plain; charset=utf-8"


def test_refusal_without_reason_has_an_empty_body() -> None:
    response = refused(400)
    assert (response.status, response.body, response.content_type) == (400, b"", None)


@pytest.mark.parametrize(
    ("data", "data_type", "content_type"),
    [
        (b"", "binary", "application/octet-stream"),
        ("a", "text", "text/plain; charset=utf-8"),
        ('{"x":1}', "json", "application/json; charset=utf-8"),
        (b"\x01\x02", "binary", "application/octet-stream"),
    ],
)
def test_user_event_reply_content_type_follows_the_data_type(
    data: bytes | str, data_type: str, content_type: str
) -> None:
    response = user_event_reply(data, data_type)  # type: ignore[arg-type]
    assert response.status == 200
    assert response.content_type == content_type
    assert response.body == (data.encode() if isinstance(data, str) else data)


def test_user_event_reply_sets_state_when_given() -> None:
    response = user_event_reply(states={"key": "a", "n": 1})
    assert response.headers == (("ce-connectionState", encode_state({"key": "a", "n": 1})),)


def test_no_content_and_acknowledged() -> None:
    assert (no_content().status, acknowledged().status, acknowledged().body) == (204, 200, b"")


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["json.webpubsub.azure.v1"], "json.webpubsub.azure.v1"),
        (
            ["protobuf.webpubsub.azure.v1", "json.reliable.webpubsub.azure.v1"],
            "json.reliable.webpubsub.azure.v1",
        ),
        (["mqtt"], None),
        ([], None),
    ],
)
def test_subprotocol_is_the_first_offered_json_one(offered: list[str], chosen: str | None) -> None:
    assert choose_subprotocol(offered) == chosen


def test_a_connection_id_no_service_could_sign_does_not_match() -> None:
    assert not verify_signature("sha256=00", "\ud800", DEFAULT_KEY)
