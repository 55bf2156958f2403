"""Keyless parts, real where they run here: a local Entra-shaped token issuer, Azurite over TLS with OAuth,
and the Web PubSub emulator over TLS accepting that issuer's tokens; the app configured to reach them by
identity, with the test credential `LocalIssuerCredential` in place of its managed identity."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devhost.processes import ManagedProcess, azurite_argv, free_port
from tests.emulator.emulator_harness import TlsEmulator, entra_tls_emulator
from tests.events.vectors import ORIGIN, EventVector
from tests.keyless.local_issuer import (
    SERVICE_OBJECT_ID,
    TENANT_ID,
    UPSTREAM_AUDIENCE,
    LocalIssuer,
    LocalIssuerCredential,
)
from tests.keyless.tls import TlsFiles
from wps_upstream import credentials
from wps_upstream.credentials import Identities, Identity
from wps_upstream.functions.eventhandler import eventhandler
from wps_upstream.functions.history import list_messages
from wps_upstream.functions.negotiate import negotiate
from wps_upstream.services import get_services, reset_services
from wps_upstream.settings import Settings

# Settings that would otherwise choose keys, or leak in from a developer's shell.
KEYED_SETTINGS = (
    "WebPubSubConnectionString",
    "AzureWebJobsStorage",
    "WebPubSubEndpoint",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "WebPubSubUpstreamAudience",
    "WebPubSubUpstreamTenantId",
    "WebPubSubUpstreamAuthority",
    "WebPubSubUpstreamAllowedCallers",
    "WEBSITE_AUTH_ENABLED",
    "WEBSITE_INSTANCE_ID",
    "PresenceBroadcast",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
)


@dataclass(frozen=True)
class TlsAzurite:
    table_port: int
    process: ManagedProcess

    @property
    def table_endpoint(self) -> str:
        """Azurite's table service by URL, as AzureWebJobsStorage__tableServiceUri names it."""
        return f"https://127.0.0.1:{self.table_port}/devstoreaccount1"


@pytest.fixture(scope="session")
def azurite_tls(tls_files: TlsFiles, session_logs: Path) -> Iterator[TlsAzurite]:
    """Azurite over https with OAuth (`--oauth basic` checks a bearer token's issuer, audience, times)."""
    table_port = free_port()
    argv = azurite_argv(blob_port=free_port(), queue_port=free_port(), table_port=table_port)
    argv += [
        "--oauth",
        "basic",
        "--cert",
        str(tls_files.server_certificate),
        "--key",
        str(tls_files.server_key),
    ]
    process = ManagedProcess("azurite-tls", argv, session_logs / "azurite-tls.log").start()
    try:
        process.wait_for_port(table_port, timeout=60)
        yield TlsAzurite(table_port, process)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def keyless_emulator(
    local_issuer_server: LocalIssuer, tls_files: TlsFiles, session_logs: Path
) -> Iterator[TlsEmulator]:
    """The Web PubSub emulator as the service of a keyless app: https and wss, the local issuer's tenant."""
    with entra_tls_emulator(
        session_logs,
        tls_files,
        tenant=local_issuer_server.tenant_id,
        authority=local_issuer_server.authority,
        name="wps-emulator-keyless",
    ) as emulator:
        yield emulator


@dataclass
class KeylessApp:
    """The app configured keyless, and the parts it talks to."""

    issuer: LocalIssuer
    emulator: TlsEmulator
    credential: LocalIssuerCredential
    log_start: int  # where the emulator's log stood when the test began

    def rest_log(self) -> list[str]:
        """The emulator's REST log lines since the test began (each is written before its answer)."""
        return [line for line in self.emulator.log(since=self.log_start).splitlines() if " REST " in line]

    def signed_in(self, vector: EventVector, **token_claims: object) -> EventVector:
        """The event as the service sends it with managed-identity auth: a bearer token, no signature."""
        token = self.issuer.token(**token_claims)  # type: ignore[arg-type]
        return vector.with_headers(ce_signature=None, Authorization=f"Bearer {token}")

    async def event(self, vector: EventVector) -> func.HttpResponse:
        request = func.HttpRequest(
            vector.method, vector.url, headers=vector.headers, params={}, body=vector.body
        )
        return await eventhandler(request)

    async def negotiate(self, user_id: str) -> func.HttpResponse:
        request = func.HttpRequest(
            "GET", "http://localhost:7071/api/negotiate", headers={}, params={"userId": user_id}, body=b""
        )
        return await negotiate(request)

    async def history(self) -> list[dict[str, Any]]:
        request = func.HttpRequest(
            "GET", "http://localhost:7071/api/messages", headers={}, params={"userId": "reader"}, body=b""
        )
        response = await list_messages(request)
        assert response.status_code == 200, response.get_body()
        return list(json.loads(response.get_body())["messages"])

    async def settings(self) -> Settings:
        return (await get_services()).settings


def keyless_environment(issuer: LocalIssuer, emulator: TlsEmulator, azurite: TlsAzurite) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:12]
    return {
        "WebPubSubEndpoint": emulator.endpoint,
        "WebPubSubHub": "chat",
        # The vectors in tests/events come from the Azure service host used in the protocol reference.
        "WebPubSubAllowedOrigins": ORIGIN,
        "AzureWebJobsStorage__tableServiceUri": azurite.table_endpoint,
        "WebPubSubUpstreamAudience": UPSTREAM_AUDIENCE,
        "WebPubSubUpstreamTenantId": TENANT_ID,
        "WebPubSubUpstreamAuthority": issuer.authority,
        "WebPubSubUpstreamAllowedCallers": SERVICE_OBJECT_ID,
        "NegotiateAllowQueryUserId": "true",
        "MessagesTableName": f"messages{suffix}",
        "PresenceTableName": f"presence{suffix}",
        "DependencyTimeoutSeconds": "5",
        "DependencyRetries": "1",
    }


@pytest.fixture
async def keyless_app(
    issuer: LocalIssuer,
    keyless_emulator: TlsEmulator,
    azurite_tls: TlsAzurite,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[KeylessApp]:
    """The app with WebPubSubEndpoint, AzureWebJobsStorage__tableServiceUri and Entra upstream auth.

    Its identity is `LocalIssuerCredential` (in place of the managed identity), trusted by Azurite and the
    emulator; its clients trust the session's certificate authority.
    """
    for name in KEYED_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in keyless_environment(issuer, keyless_emulator, azurite_tls).items():
        monkeypatch.setenv(name, value)
    # Microsoft's Python client (websocket-client underneath) trusts the session's authority over wss.
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(tls_files.ca_certificate))
    credential = LocalIssuerCredential(issuer)
    identity = Identity(credential, connection_verify=str(tls_files.ca_certificate))
    monkeypatch.setattr(credentials, "identities_for", lambda settings: Identities(identity, identity))
    await reset_services()
    yield KeylessApp(issuer, keyless_emulator, credential, keyless_emulator.log_size())
    await reset_services()
