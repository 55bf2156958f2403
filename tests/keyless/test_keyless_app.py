"""The app without a key anywhere: Entra tokens on the webhook, Table storage and the REST API by identity.

Real parts: Azurite over TLS with OAuth, the local token issuer, and the Web PubSub emulator over TLS
accepting only that issuer's Entra tokens from the app (`--entra-tenant`), with Microsoft's Python client
connected to it over wss. The app's identity is the test credential `LocalIssuerCredential`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
import pytest
from azure.data.tables.aio import TableClient

from tests.constants import ACCESS_KEY
from tests.emulator.emulator_harness import live_client
from tests.events.vectors import load
from tests.keyless.conftest import KeylessApp, TlsAzurite
from tests.keyless.local_issuer import APP_OBJECT_ID, LocalIssuerCredential
from tests.keyless.tls import TlsFiles
from wps_upstream import entra_tokens
from wps_upstream.services import get_services, reset_services

BY_THE_APP = (
    f"by Entra object id {APP_OBJECT_ID}"  # how the emulator logs a REST call the app's identity made
)


def connection() -> str:
    return f"conn-{uuid.uuid4().hex[:10]}"


def body_json(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.get_body()))


async def negotiated_url(app: KeylessApp, user_id: str) -> str:
    response = await app.negotiate(user_id)
    assert response.status_code == 200, response.get_body()
    return str(body_json(response)["url"])


async def stored_rows(
    azurite: TlsAzurite, tls: TlsFiles, table: str, credential: LocalIssuerCredential
) -> list[Any]:
    async with TableClient(
        azurite.table_endpoint, table, credential=credential, connection_verify=str(tls.ca_certificate)
    ) as client:
        return [row async for row in client.list_entities()]


async def test_a_client_connected_over_wss_with_the_negotiated_url_receives_the_stored_message(
    keyless_app: KeylessApp, azurite_tls: TlsAzurite, tls_files: TlsFiles
) -> None:
    url = await negotiated_url(keyless_app, "ann")
    with live_client(lambda: url) as ann:
        response = await keyless_app.event(
            keyless_app.signed_in(load("message-text").for_connection(connection()))
        )
        assert response.status_code == 200, response.get_body()
        stored_id = body_json(response)["id"]
        data_type, broadcast = ann.next_message()
    assert (data_type, broadcast["type"], broadcast["id"]) == ("json", "message", stored_id)
    settings = await keyless_app.settings()
    assert await stored_rows(azurite_tls, tls_files, settings.messages_table, keyless_app.credential)
    assert [message["id"] for message in await keyless_app.history()] == [stored_id]


async def test_the_broadcast_is_made_with_the_apps_identity(keyless_app: KeylessApp) -> None:
    response = await keyless_app.event(
        keyless_app.signed_in(load("message-text").for_connection(connection()))
    )
    assert response.status_code == 200, response.get_body()
    [send] = keyless_app.rest_log()
    assert "REST POST /api/hubs/chat/:send -> 202 json" in send
    assert BY_THE_APP in send


async def test_the_app_asks_for_storage_and_web_pubsub_tokens_only(keyless_app: KeylessApp) -> None:
    conn = connection()
    await keyless_app.event(keyless_app.signed_in(load("connected").for_connection(conn)))
    assert set(keyless_app.credential.scopes) == {
        "https://storage.azure.com/.default",
        "https://webpubsub.azure.com/.default",
    }


async def test_a_new_user_sequence_runs_with_tokens_only(keyless_app: KeylessApp) -> None:
    conn = connection()
    url = await negotiated_url(keyless_app, "watcher")
    with live_client(lambda: url) as watcher:
        for name in ("connect", "connected", "message-text", "disconnected"):
            response = await keyless_app.event(keyless_app.signed_in(load(name).for_connection(conn)))
            assert response.status_code == 200, (name, response.get_body())
        received = [watcher.next_message()[1] for _ in range(3)]
    services = await get_services()
    assert await services.presence.online(hub="chat") == []
    kinds = [(message["type"], message.get("event")) for message in received]
    assert kinds == [("presence", "connected"), ("message", None), ("presence", "disconnected")]


async def test_negotiate_gets_the_client_token_from_the_service_with_the_apps_identity(
    keyless_app: KeylessApp,
) -> None:
    url = await negotiated_url(keyless_app, "ann")
    endpoint = keyless_app.emulator.endpoint
    assert url.startswith(f"{endpoint.replace('https', 'wss')}/client/hubs/chat?access_token=")
    [generate] = keyless_app.rest_log()
    assert "REST POST /api/hubs/chat/:generateToken -> 200 token for user 'ann'" in generate
    assert BY_THE_APP in generate
    token = url.partition("access_token=")[2].partition("&")[0]
    claims = jwt.decode(token, ACCESS_KEY, algorithms=["HS256"], audience=f"{endpoint}/client/hubs/chat")
    assert claims["sub"] == "ann"


async def test_an_event_without_a_token_is_refused_although_it_is_signed(keyless_app: KeylessApp) -> None:
    response = await keyless_app.event(load("message-text").for_connection(connection()))
    assert response.status_code == 401
    assert b"Authorization header is missing" in response.get_body()
    assert keyless_app.rest_log() == []


async def test_an_event_from_an_identity_that_is_not_allowed_is_refused(keyless_app: KeylessApp) -> None:
    vector = keyless_app.signed_in(
        load("message-text").for_connection(connection()), object_id=str(uuid.uuid4())
    )
    response = await keyless_app.event(vector)
    assert response.status_code == 401
    assert b"WebPubSubUpstreamAllowedCallers" in response.get_body()


async def test_the_abuse_protection_check_is_answered_without_a_token(keyless_app: KeylessApp) -> None:
    response = await keyless_app.event(load("preflight"))
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "xxx.webpubsub.azure.com"


async def test_without_upstream_auth_a_keyless_app_refuses_the_webhook_and_says_why(
    keyless_app: KeylessApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WebPubSubUpstreamAudience", "WebPubSubUpstreamTenantId", "WebPubSubUpstreamAuthority"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("WebPubSubUpstreamAllowedCallers")
    await reset_services()
    for vector in (load("preflight"), load("message-text")):
        response = await keyless_app.event(vector)
        assert response.status_code == 500
        assert b"WebPubSubUpstreamAudience" in response.get_body()
    negotiated = await keyless_app.negotiate("ann")
    assert negotiated.status_code == 200  # only the webhook is closed


async def test_a_token_signed_with_a_rotated_key_is_accepted_after_one_key_fetch(
    keyless_app: KeylessApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(entra_tokens, "REFRESH_INTERVAL_S", 0.0)  # the rate limit has its own unit test
    first = await keyless_app.event(keyless_app.signed_in(load("connect").for_connection(connection())))
    assert first.status_code == 200
    keyless_app.issuer.rotate()
    fetched = keyless_app.issuer.requests[keyless_app.issuer.jwks_path]
    second = await keyless_app.event(keyless_app.signed_in(load("connect").for_connection(connection())))
    assert second.status_code == 200
    assert keyless_app.issuer.requests[keyless_app.issuer.jwks_path] == fetched + 1
