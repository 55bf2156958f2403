"""Both token kinds through the one decoder: client access tokens, REST bearer tokens, how `aud` compares."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from azure.messaging.webpubsubservice import WebPubSubServiceClient

from tests.constants import ACCESS_KEY, web_pubsub_connection_string
from wps_emulator.tokens import TokenError, origin_of, verify_client_token, verify_rest_token

EXAMPLE = {origin_of("http://example.com")}


def signed(key: str = ACCESS_KEY, **claims: Any) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm="HS256")


def sdk_client_token(endpoint: str, hub: str = "chat") -> str:
    service = WebPubSubServiceClient.from_connection_string(web_pubsub_connection_string(endpoint), hub=hub)
    return str(service.get_client_access_token(user_id="u")["token"])


# --- client access tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sdk_endpoint", "emulator_endpoint"),
    [
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://LOCALHOST:8080", "http://localhost:8080"),  # host case
        ("http://example.com:80", "http://example.com"),  # the default port spelled out
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
    ],
)
def test_sdk_client_tokens_match_the_same_endpoint(sdk_endpoint: str, emulator_endpoint: str) -> None:
    claims = verify_client_token(
        sdk_client_token(sdk_endpoint), ACCESS_KEY, "chat", {origin_of(emulator_endpoint)}
    )
    assert claims.user_id == "u"


@pytest.mark.parametrize(
    "emulator_endpoint",
    ["http://localhost:8081", "http://localhost", "https://localhost:8080", "http://127.0.0.2:8080"],
)
def test_sdk_client_tokens_for_another_port_scheme_or_host_are_refused(emulator_endpoint: str) -> None:
    with pytest.raises(TokenError, match="does not match this endpoint"):
        verify_client_token(
            sdk_client_token("http://localhost:8080"), ACCESS_KEY, "chat", {origin_of(emulator_endpoint)}
        )


def test_client_audience_may_use_ws_and_any_hub_case() -> None:
    token = signed(aud="ws://example.com/client/hubs/CHAT")
    assert verify_client_token(token, ACCESS_KEY, "chat", EXAMPLE).user_id is None


def test_client_audience_path_must_be_the_client_path() -> None:
    with pytest.raises(TokenError):
        verify_client_token(signed(aud="http://example.com/other/hubs/chat"), ACCESS_KEY, "chat", EXAMPLE)


def test_client_token_claims_reach_the_connect_event_as_lists_of_strings() -> None:
    token = signed(aud="http://example.com/client/hubs/chat", sub="u", role="r", n=1, ok=True, obj={"a": [1]})
    claims = verify_client_token(token, ACCESS_KEY, "chat", EXAMPLE).as_connect_claims()
    assert (claims["sub"], claims["role"], claims["n"], claims["ok"], claims["obj"]) == (
        ["u"],
        ["r"],
        ["1"],
        ["true"],
        ['{"a":[1]}'],
    )


# --- REST bearer tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "audience",
    [
        "http://example.com/api/hubs/chat/groups/room%201/:send?api-version=2024-12-01",  # the SDK's
        "http://example.com/api/hubs/chat/groups/room%201/:send",
        "http://example.com/api/hubs/chat/groups/room 1/:send",  # decoded
        "http%3A%2F%2Fexample.com%2Fapi%2Fhubs%2Fchat%2Fgroups%2Froom%25201%2F%3Asend",  # URL-encoded whole
        "HTTP://EXAMPLE.COM/api/hubs/chat/groups/room%201/:send/",  # scheme/host case, trailing slash
        "http://example.com:80/api/hubs/chat/groups/room%201/:send",  # the default port spelled out
    ],
)
def test_rest_audiences_naming_the_request_url_match(audience: str) -> None:
    verify_rest_token(
        signed(aud=audience), ACCESS_KEY, "/api/hubs/chat/groups/room%201/:send?api-version=1", EXAMPLE
    )


@pytest.mark.parametrize(
    "audience",
    [
        "https://example.com/api/hubs/chat/:send",  # another scheme
        "http://example.org/api/hubs/chat/:send",  # another host
        "http://example.com:8080/api/hubs/chat/:send",  # another port
        "http://example.com/api/hubs/chat/users/u/:send",  # another path
        "http://example.com/api/hubs/chat",  # a prefix of the path
        "/api/hubs/chat/:send",  # not an absolute URL
        "http://[bad/api/hubs/chat/:send",  # not a URL at all
    ],
)
def test_rest_audiences_naming_something_else_do_not_match(audience: str) -> None:
    with pytest.raises(TokenError, match="does not match the request URL"):
        verify_rest_token(signed(aud=audience), ACCESS_KEY, "/api/hubs/chat/:send", EXAMPLE)


def test_rest_audience_on_a_non_default_port_must_name_that_port() -> None:
    origins = {origin_of("http://localhost:8080")}
    verify_rest_token(
        signed(aud="http://localhost:8080/api/hubs/chat/:send"), ACCESS_KEY, "/api/hubs/chat/:send", origins
    )
    with pytest.raises(TokenError):
        verify_rest_token(
            signed(aud="http://localhost/api/hubs/chat/:send"), ACCESS_KEY, "/api/hubs/chat/:send", origins
        )


# --- what both kinds share: the decoder ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (
            signed(key="Z" * 44, aud="http://example.com/api/hubs/chat"),
            "not signed with this emulator's access key",
        ),
        (signed(aud="http://example.com/api/hubs/chat", exp=int(time.time()) - 600), "has expired"),
        (jwt.encode({"aud": "http://example.com/api/hubs/chat"}, ACCESS_KEY), "has no 'exp' claim"),
        (signed(), "has no 'aud' claim"),
        ("not.a.token", "malformed"),
    ],
)
def test_both_kinds_are_refused_for_the_same_reasons(token: str, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        verify_rest_token(token, ACCESS_KEY, "/api/hubs/chat", EXAMPLE)
    with pytest.raises(TokenError, match=message):
        verify_client_token(token, ACCESS_KEY, "chat", EXAMPLE)


def test_claims_nested_too_deeply_are_refused_without_recursing() -> None:
    nested: Any = "leaf"
    for _ in range(200):
        nested = [nested]
    with pytest.raises(TokenError, match="nested deeper"):
        verify_client_token(
            signed(aud="http://example.com/client/hubs/chat", deep=nested), ACCESS_KEY, "chat", EXAMPLE
        )
