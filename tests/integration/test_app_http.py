"""/api/negotiate and /api/messages through the functions, on real Azurite."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from tests.constants import ACCESS_KEY
from tests.events.vectors import load
from tests.integration.conftest import FunctionApp
from wps_upstream.services import reset_services


async def test_negotiate_returns_a_client_url_for_the_query_user(app: FunctionApp) -> None:
    response = await app.negotiate({"userId": "ann"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = json.loads(response.get_body())
    base = app.recorder.endpoint.replace("http://", "ws://") + "/client/hubs/chat"
    assert body["url"] == f"{base}?access_token={body['token']}"
    assert (body["baseUrl"], body["userId"], body["hub"]) == (base, "ann", "chat")
    claims = jwt.decode(
        body["token"], ACCESS_KEY, algorithms=["HS256"], audience=base.replace("ws://", "http://")
    )
    assert claims["sub"] == "ann"
    assert claims["exp"] - claims["iat"] == 60 * 60
    assert app.recorder.calls == []  # signed locally


async def test_negotiate_token_lifetime_is_configurable(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WebPubSubTokenLifetimeMinutes", "5")
    await reset_services()
    body = json.loads((await app.negotiate({"userId": "ann"})).get_body())
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 5 * 60


async def test_negotiate_grants_no_roles_by_default(app: FunctionApp) -> None:
    body = json.loads((await app.negotiate({"userId": "ann"})).get_body())
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert "role" not in claims


async def test_negotiate_lets_clients_join_the_presence_group(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PresenceBroadcast", "group:lobby")
    await reset_services()
    body = json.loads((await app.negotiate({"userId": "ann"})).get_body())
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["role"] == ["webpubsub.joinLeaveGroup.lobby"]
    assert body["presenceGroup"] == "lobby"


async def test_negotiate_without_user_is_401(app: FunctionApp) -> None:
    response = await app.negotiate()
    assert response.status_code == 401
    assert b"userId" in response.get_body()


async def test_negotiate_with_unusable_user_id_is_400(app: FunctionApp) -> None:
    response = await app.negotiate({"userId": "bad\nname"})
    assert response.status_code == 400
    assert b"control characters" in response.get_body()


async def test_negotiate_query_user_is_refused_when_not_allowed(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NegotiateAllowQueryUserId", "false")
    await reset_services()
    assert (await app.negotiate({"userId": "ann"})).status_code == 401


async def test_negotiate_uses_app_service_authentication(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NegotiateAllowQueryUserId", "false")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    await reset_services()
    principal = {
        "X-MS-CLIENT-PRINCIPAL-ID": "6d1e0f53-5f65-4a32-9b36-0cc6b2fa7f4e",
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
        "X-MS-CLIENT-PRINCIPAL-NAME": "Ann Example",
    }
    body = json.loads((await app.negotiate(headers=principal)).get_body())
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert (body["userId"], claims["sub"]) == ("aad:6d1e0f53-5f65-4a32-9b36-0cc6b2fa7f4e",) * 2
    assert body["userName"] == "Ann Example"
    assert parse_qs(urlsplit(body["url"]).query)["userName"] == ["Ann Example"]


async def test_negotiate_in_azure_with_query_user_ids_on_is_the_configuration_error(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123abcd")
    await reset_services()
    response = await app.negotiate({"userId": "mallory"})
    assert response.status_code == 500
    assert b"NegotiateAllowQueryUserId" in response.get_body()


async def send(app: FunctionApp, text: str) -> str:
    vector = load("message-text").for_connection(f"conn-{uuid.uuid4().hex[:8]}").with_body(text.encode())
    response = await app.event(vector)
    assert response.status_code == 200
    return str(json.loads(response.get_body())["id"])


@pytest.mark.parametrize("partitions", ["1", "3"])
async def test_history_pages_newest_first_with_a_cursor(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch, partitions: str
) -> None:
    monkeypatch.setenv("MessagesPartitions", partitions)
    await reset_services()
    ids = [await send(app, f"m{n}") for n in range(5)]
    first = json.loads((await app.messages(limit="2")).get_body())
    assert [m["data"] for m in first["messages"]] == ["m4", "m3"]
    assert first["next"]
    second = json.loads((await app.messages(limit="2", before=first["next"])).get_body())
    assert [m["data"] for m in second["messages"]] == ["m2", "m1"]
    third = json.loads((await app.messages(limit="2", before=second["next"])).get_body())
    assert [m["data"] for m in third["messages"]] == ["m0"]
    assert third["next"] is None
    listed = [m["id"] for page in (first, second, third) for m in page["messages"]]
    assert listed == ids[::-1]


async def test_history_messages_have_the_contract_shape(app: FunctionApp) -> None:
    await send(app, "hello")
    response = await app.messages()
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    [message] = json.loads(response.get_body())["messages"]
    assert set(message) == {"type", "id", "userId", "connectionId", "time", "dataType", "data"}
    assert message["type"] == "message"
    assert message["time"].endswith("Z")


async def test_empty_history(app: FunctionApp) -> None:
    assert json.loads((await app.messages()).get_body()) == {"messages": [], "next": None}


@pytest.mark.parametrize("limit", ["0", "201", "lots"])
async def test_history_limit_out_of_bounds_is_400(app: FunctionApp, limit: str) -> None:
    response = await app.messages(limit=limit)
    assert response.status_code == 400
    assert b"limit" in response.get_body()


async def test_history_with_a_foreign_cursor_is_400(app: FunctionApp) -> None:
    response = await app.messages(before="not-a-cursor")
    assert response.status_code == 400
    assert b"cursor" in response.get_body()


async def test_history_needs_a_user(app: FunctionApp) -> None:
    response = await app.messages(user=None)
    assert response.status_code == 401
