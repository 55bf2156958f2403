"""The emulator standing in for the service of a keyless app: TLS, Entra tokens on the REST API, wss clients.

A real `python -m wps_emulator` serves https and wss with a certificate of the session's test authority
and accepts the local token issuer's tenant (`--entra-tenant`, `--entra-authority`). Microsoft's service
SDK calls it with the test credential `LocalIssuerCredential` (as the app does with its managed
identity), and Microsoft's Python client connects over wss trusting the test authority.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from azure.messaging.webpubsubservice import WebPubSubServiceClient
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient as AioWebPubSubServiceClient

from devhost.processes import free_port
from tests.constants import ACCESS_KEY, HUB
from tests.emulator.emulator_harness import TlsEmulator, entra_tls_emulator, live_client
from tests.keyless.local_issuer import (
    APP_OBJECT_ID,
    SERVICE_CLIENT_ID,
    LocalIssuer,
    LocalIssuerCredential,
)
from tests.keyless.tls import TlsFiles
from wps_emulator.entra import AUDIENCE


@pytest.fixture(scope="module")
def emulator(
    session_logs: Path, tls_files: TlsFiles, local_issuer_server: LocalIssuer
) -> Iterator[TlsEmulator]:
    # Its own process, not the keyless tests' one: these tests rotate the issuer's key, which must not
    # leave another test's emulator holding keys that test does not expect.
    with entra_tls_emulator(
        session_logs,
        tls_files,
        tenant=local_issuer_server.tenant_id,
        authority=local_issuer_server.authority,
        name="wps-emulator-entra",
    ) as running:
        yield running


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch, tls_files: TlsFiles) -> None:
    """Microsoft's Python client (websocket-client underneath) trusts the test authority."""
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(tls_files.ca_certificate))


@pytest.fixture
async def service(emulator: TlsEmulator, issuer: LocalIssuer) -> AsyncIterator[AioWebPubSubServiceClient]:
    """The service SDK as a keyless app builds it: the endpoint, a credential, the trusted authority."""
    async with AioWebPubSubServiceClient(
        emulator.endpoint,
        HUB,
        LocalIssuerCredential(issuer),
        connection_verify=str(emulator.tls.ca_certificate),
        retry_total=0,
    ) as client:
        yield client


async def rest_call(emulator: TlsEmulator, token: str) -> tuple[int, dict[str, Any]]:
    """A broadcast with a hand-made bearer token: (status, JSON body)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emulator.endpoint}/api/hubs/{HUB}/:send?api-version=2024-12-01",
            data=b"{}",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            ssl=emulator.ssl_context(),
        ) as response,
    ):
        body = await response.json() if response.content_length else {}
        return response.status, body


def app_token(local_issuer: LocalIssuer, **options: Any) -> str:
    """A managed identity's token for Web PubSub (v1, audience https://webpubsub.azure.com)."""
    return local_issuer.token(**{"audience": AUDIENCE, "version": 1, "object_id": APP_OBJECT_ID, **options})


# --- the keyless app's calls --------------------------------------------------------------------------


async def test_a_broadcast_with_an_entra_token_reaches_a_client_over_wss(
    emulator: TlsEmulator, service: AioWebPubSubServiceClient, trusted: None
) -> None:
    url = (await service.get_client_access_token(user_id="ann"))["url"]
    assert url.startswith(f"wss://127.0.0.1:{emulator.port}/client/hubs/{HUB}?access_token=")
    with live_client(lambda: url) as ann:
        await service.send_to_all({"hello": "over tls"})
        assert ann.next_message() == ("json", {"hello": "over tls"})


async def test_generate_token_with_an_entra_token_signs_a_client_token_for_the_https_endpoint(
    emulator: TlsEmulator, service: AioWebPubSubServiceClient
) -> None:
    token = (await service.get_client_access_token(user_id="bo", roles=["webpubsub.sendToGroup"]))["token"]
    claims = jwt.decode(
        token, ACCESS_KEY, algorithms=["HS256"], audience=f"{emulator.endpoint}/client/hubs/{HUB}"
    )
    assert (claims["sub"], claims["role"]) == ("bo", ["webpubsub.sendToGroup"])


async def test_each_rest_call_by_an_entra_identity_is_logged_with_its_object_id(
    emulator: TlsEmulator, service: AioWebPubSubServiceClient
) -> None:
    mark = emulator.log_size()
    await service.send_to_all({"logged": True})
    [line] = [line for line in emulator.log(since=mark).splitlines() if "REST POST" in line]
    assert line.endswith(f"ms) by Entra object id {APP_OBJECT_ID} (app {SERVICE_CLIENT_ID})")


def test_the_access_key_keeps_working_alongside(emulator: TlsEmulator, trusted: None) -> None:
    with (
        WebPubSubServiceClient.from_connection_string(
            emulator.connection_string, HUB, connection_verify=str(emulator.tls.ca_certificate), retry_total=0
        ) as keyed,
        live_client(lambda: keyed.get_client_access_token(user_id="cy")["url"]) as cy,
    ):
        keyed.send_to_user("cy", "by key", content_type="text/plain")
        assert cy.next_message() == ("text", "by key")


# --- refusals: 401 with the reason ----------------------------------------------------------------------


async def test_a_token_for_another_audience_is_a_401_naming_the_audience_expected(
    emulator: TlsEmulator, issuer: LocalIssuer
) -> None:
    status, body = await rest_call(emulator, app_token(issuer, audience="https://storage.azure.com"))
    assert (status, body["code"]) == (401, "Unauthorized")
    assert "accepts tokens for 'https://webpubsub.azure.com'" in body["message"]


async def test_a_token_of_another_tenant_is_a_401(emulator: TlsEmulator, issuer: LocalIssuer) -> None:
    status, body = await rest_call(
        emulator, app_token(issuer, issuer=f"https://sts.windows.net/{uuid.uuid4()}/")
    )
    assert status == 401
    assert f"not by tenant {issuer.tenant_id}" in body["message"]


async def test_an_expired_token_is_a_401(emulator: TlsEmulator, issuer: LocalIssuer) -> None:
    status, body = await rest_call(emulator, app_token(issuer, lifetime_s=-360))
    assert (status, body["message"]) == (401, "the Entra token has expired")


async def test_a_rotated_key_is_fetched_and_accepted(emulator: TlsEmulator, issuer: LocalIssuer) -> None:
    assert (await rest_call(emulator, app_token(issuer)))[0] == 202
    fetches = issuer.requests[issuer.jwks_path]
    issuer.rotate()
    assert (await rest_call(emulator, app_token(issuer)))[0] == 202
    assert issuer.requests[issuer.jwks_path] == fetches + 1


# --- an emulator whose token issuer is down ------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator_without_keys(
    session_logs: Path, tls_files: TlsFiles, local_issuer_server: LocalIssuer
) -> Iterator[TlsEmulator]:
    tenant = local_issuer_server.tenant_id
    dead = f"http://127.0.0.1:{free_port()}/{tenant}"  # nothing listens there
    with entra_tls_emulator(
        session_logs, tls_files, tenant=tenant, authority=dead, name="wps-emulator-entra-down"
    ) as running:
        yield running


async def test_when_the_key_endpoint_is_down_the_call_is_a_503_naming_it(
    emulator_without_keys: TlsEmulator, issuer: LocalIssuer
) -> None:
    status, body = await rest_call(emulator_without_keys, app_token(issuer))
    assert (status, body["code"]) == (503, "ServiceUnavailable")
    assert "/v2.0/.well-known/openid-configuration failed" in body["message"]
