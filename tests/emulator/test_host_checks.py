"""Only this machine's clients (and hosts in allowedHosts) reach the emulator: Host, Origin, token aud."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from azure.messaging.webpubsubservice import WebPubSubServiceClient
from emulator_harness import EmulatorRun, handshake_status, start_emulator

from devhost.processes import free_port
from tests.constants import web_pubsub_connection_string
from wps_emulator.app import create_app
from wps_emulator.config import EmulatorConfig
from wps_emulator.hosts import HostPolicy


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    yield from start_emulator(
        tmp_path_factory.mktemp("hosts"), "--allowed-hosts", "alias.test", name="emulator-hosts"
    )


def client_url(run: EmulatorRun, endpoint: str | None = None) -> str:
    """A client URL made by Microsoft's SDK for `endpoint` (default: the emulator's public endpoint)."""
    connection_string = web_pubsub_connection_string(endpoint or run.emulator.endpoint)
    service = WebPubSubServiceClient.from_connection_string(connection_string, hub="chat")
    return str(service.get_client_access_token(user_id="u")["url"])


async def refusal(url: str, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_a_page_from_another_origin_cannot_open_a_socket(run: EmulatorRun) -> None:
    url = client_url(run)
    assert await handshake_status(url, headers={"Origin": "https://evil.example"}) == 403
    status, text = await refusal(url.replace("ws://", "http://"), {"Origin": "https://evil.example"})
    assert status == 403
    assert "pages from origin 'https://evil.example' may not use this emulator" in text
    assert "localhost, 127.0.0.1, [::1], alias.test (any port, any scheme)" in text
    assert "--allowed-hosts" in text


@pytest.mark.parametrize("origin", ["http://localhost:7071", "http://127.0.0.1:7071", "http://[::1]:3000"])
async def test_pages_served_from_this_machine_may_open_sockets(run: EmulatorRun, origin: str) -> None:
    assert await handshake_status(client_url(run), headers={"Origin": origin}) == 101


async def test_a_dns_rebinding_page_cannot_reach_the_rest_api(run: EmulatorRun) -> None:
    host = f"rebind.evil.example:{run.emulator.port}"
    status, text = await refusal(f"{run.emulator.endpoint}/api/hubs/chat/users/u", {"Host": host})
    assert status == 403
    assert f"Host {host!r} is not a host this emulator answers for" in text


def test_the_sdk_reaches_the_rest_api_by_any_loopback_name(run: EmulatorRun) -> None:
    for endpoint in (run.emulator.endpoint, f"http://localhost:{run.emulator.port}"):
        connection_string = web_pubsub_connection_string(endpoint)
        service = WebPubSubServiceClient.from_connection_string(connection_string, hub="chat")
        assert service.user_exists("nobody") is False


async def test_a_token_naming_localhost_works_against_a_127_0_0_1_endpoint(run: EmulatorRun) -> None:
    url = client_url(run, f"http://localhost:{run.emulator.port}").replace("localhost", "127.0.0.1", 1)
    assert await handshake_status(url) == 101


async def test_an_allowed_host_may_be_the_host_the_origin_and_the_token_audience(run: EmulatorRun) -> None:
    url = client_url(run, f"http://alias.test:{run.emulator.port}").replace("alias.test", "127.0.0.1", 1)
    headers = {"Host": f"alias.test:{run.emulator.port}", "Origin": "http://alias.test:3000"}
    assert await handshake_status(url, headers=headers) == 101


async def test_a_token_must_name_the_public_endpoint_even_when_any_host_is_allowed() -> None:
    config = EmulatorConfig(port=free_port(), allowed_hosts=("*",))
    async with TestServer(create_app(config), host="127.0.0.1", port=config.port):
        other = client_url_for(f"http://evil.example:{config.port}")
        url = other.replace("evil.example", "127.0.0.1", 1)
        headers = {"Host": f"evil.example:{config.port}"}
        assert await handshake_status(url, headers=headers) == 401  # the host is let in, the token is not
        assert await handshake_status(client_url_for(f"http://127.0.0.1:{config.port}")) == 101


def client_url_for(endpoint: str) -> str:
    service = WebPubSubServiceClient.from_connection_string(
        web_pubsub_connection_string(endpoint), hub="chat"
    )
    return str(service.get_client_access_token(user_id="u")["url"])


@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        ("localhost:8080", None, True),
        ("LOCALHOST", None, True),
        ("[::1]:8080", "http://[::1]:5173", True),
        ("127.0.0.1:8080", "null", False),  # sandboxed frames and file:// pages
        (None, None, False),
        ("localhost:8080@evil.example", None, False),
        ("emulator.internal:443", "https://emulator.internal", True),  # the public endpoint's host
    ],
)
def test_host_policy(host: str | None, origin: str | None, allowed: bool) -> None:
    policy = HostPolicy("https://emulator.internal")
    assert (policy.refusal(host, origin) is None) is allowed
