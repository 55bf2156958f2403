"""The REST API of the real `python -m wps_emulator` process, with Microsoft's SDKs on both sides.

`azure-messaging-webpubsubservice` drives the REST API; `azure-messaging-webpubsubclient` (reliable
JSON protocol, the SDK default) is the connected client that must see the effects.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.messaging.webpubsubservice import WebPubSubServiceClient

from devhost.processes import ManagedProcess, free_port
from tests.constants import ACCESS_KEY, HUB, web_pubsub_connection_string
from tests.emulator.emulator_harness import WAIT, live_client


@dataclass(frozen=True)
class Emulator:
    endpoint: str

    @property
    def connection_string(self) -> str:
        return web_pubsub_connection_string(self.endpoint)


@pytest.fixture(scope="module")
def emulator(session_logs: Path) -> Iterator[Emulator]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "wps_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--access-key",
        ACCESS_KEY,
    ]
    process = ManagedProcess("wps-emulator-rest", argv, session_logs / "wps-emulator-rest.log").start()
    try:
        process.wait_for_http(f"http://127.0.0.1:{port}/api/health", method="HEAD", timeout=30)
        yield Emulator(f"http://127.0.0.1:{port}")
    finally:
        process.stop()


@pytest.fixture
def service(emulator: Emulator) -> Iterator[WebPubSubServiceClient]:
    with WebPubSubServiceClient.from_connection_string(
        emulator.connection_string, hub=HUB, retry_total=0
    ) as sdk:
        yield sdk


def token_url(service: WebPubSubServiceClient, **claims: Any) -> Callable[[], str]:
    return lambda: service.get_client_access_token(**claims)["url"]


def eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_sends_of_each_content_type_reach_a_real_client(service) -> None:
    with live_client(token_url(service, user_id="alice")) as alice:
        service.send_to_all({"type": "msg", "text": "hé"})
        service.send_to_connection(alice.connection_id, "plain text", content_type="text/plain")
        service.send_to_user("alice", b"\x00\x01", content_type="application/octet-stream")
        received = [alice.next_message() for _ in range(3)]
    assert received[0] == ("json", {"type": "msg", "text": "hé"})
    assert received[1] == ("text", "plain text")
    assert received[2][0] == "binary" and bytes(received[2][1]) == b"\x00\x01"


def test_filtered_and_excluded_sends_skip_a_real_client(service) -> None:
    with (
        live_client(token_url(service, user_id="alice")) as alice,
        live_client(token_url(service, user_id="bob")) as bob,
    ):
        service.send_to_all("for bob", content_type="text/plain", filter="userId eq 'bob'")
        service.send_to_all("not for alice", content_type="text/plain", excluded=[alice.connection_id])
        service.send_to_all("marker", content_type="text/plain")
        assert alice.next_message() == ("text", "marker")
        assert [bob.next_message() for _ in range(3)] == [
            ("text", "for bob"),
            ("text", "not for alice"),
            ("text", "marker"),
        ]


def test_existence_and_listing_see_a_real_client(service) -> None:
    with live_client(token_url(service, user_id="carol", groups=["lobby"])) as carol:
        assert service.connection_exists(carol.connection_id)
        assert service.user_exists("carol")
        assert service.group_exists("lobby")
        members = [(m.connection_id, m.user_id) for m in service.list_connections(group="lobby")]
        assert members == [(carol.connection_id, "carol")]


def test_group_membership_set_by_rest_routes_group_sends(service) -> None:
    with live_client(token_url(service, user_id="dave")) as dave:
        service.add_connection_to_group("room7", dave.connection_id)
        service.send_to_group("room7", "in the room", content_type="text/plain")
        assert dave.next_message() == ("room7:text", "in the room")  # a group message
        service.remove_connection_from_group("room7", dave.connection_id)
        service.send_to_group("room7", "left the room", content_type="text/plain")
        service.send_to_all("marker", content_type="text/plain")
        assert dave.next_message() == ("text", "marker")


def test_close_connection_disconnects_the_real_client_with_the_reason(service) -> None:
    with live_client(token_url(service, user_id="erin"), reconnect_retry_total=0) as erin:
        service.close_connection(erin.connection_id, reason="bye now")
        assert erin.disconnects.get(timeout=WAIT) == "bye now"
        assert eventually(lambda: not service.connection_exists(erin.connection_id))


class EmulatorKeyCredential:
    """Stands in for an Entra credential: hands the SDK a key-signed bearer token for :generateToken."""

    def __init__(self, audience: str) -> None:
        self.audience = audience

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        expires = int(time.time()) + 60
        return AccessToken(
            jwt.encode({"aud": self.audience, "exp": expires}, ACCESS_KEY, algorithm="HS256"), expires
        )


def test_a_token_from_generate_token_opens_a_real_connection(emulator, service) -> None:
    credential = EmulatorKeyCredential(f"{emulator.endpoint}/api/hubs/{HUB}/:generateToken")
    with WebPubSubServiceClient(emulator.endpoint, HUB, credential, retry_total=0) as entra_like:

        def url() -> str:
            return entra_like.get_client_access_token(user_id="frank", enforce_https=False)["url"]

        with live_client(url) as frank:
            service.send_to_user("frank", "welcome", content_type="text/plain")
            assert frank.next_message() == ("text", "welcome")
