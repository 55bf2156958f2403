"""How a REST bearer token's `aud` is compared with the request URL."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from wps_emulator.rest import audience_matches


def request_to(path: str, host: str = "example.com") -> web.Request:
    return make_mocked_request("POST", path, headers={"Host": host})


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
def test_audiences_naming_the_request_url_match(audience: str) -> None:
    assert audience_matches(audience, request_to("/api/hubs/chat/groups/room%201/:send?api-version=1"))


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
def test_audiences_naming_something_else_do_not_match(audience: str) -> None:
    assert not audience_matches(audience, request_to("/api/hubs/chat/:send"))


def test_a_non_default_port_must_match() -> None:
    request = request_to("/api/hubs/chat/:send", host="localhost:8080")
    assert audience_matches("http://localhost:8080/api/hubs/chat/:send", request)
    assert not audience_matches("http://localhost/api/hubs/chat/:send", request)
