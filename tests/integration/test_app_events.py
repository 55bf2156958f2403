"""The event handler end to end in-process: real Azurite, the recording REST endpoint, fixed vectors."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.events.vectors import load
from tests.integration.conftest import FunctionApp
from wps_upstream.services import reset_services


def connection() -> str:
    return f"conn-{uuid.uuid4().hex[:10]}"


def body_json(response: object) -> dict[str, object]:
    return json.loads(response.get_body())  # type: ignore[attr-defined,no-any-return]


async def test_new_user_sequence_connect_connected_message_disconnected(app: FunctionApp) -> None:
    conn = connection()

    connect = await app.event(load("connect").for_connection(conn))
    assert connect.status_code == 200
    assert body_json(connect) == {"userId": "u1", "subprotocol": "json.webpubsub.azure.v1"}
    assert app.recorder.calls == []  # connect makes no REST call

    connected = await app.event(load("connected").for_connection(conn))
    assert (connected.status_code, connected.get_body()) == (200, b"")
    assert await app.online() == [(conn, "u1")]

    message = await app.event(load("message-text").for_connection(conn))
    assert message.status_code == 200
    assert message.headers["Content-Type"] == "application/json; charset=utf-8"
    stored_id = body_json(message)["id"]

    disconnected = await app.event(load("disconnected").for_connection(conn))
    assert disconnected.status_code == 200
    assert await app.online() == []

    history = await app.history()
    assert [(m["id"], m["userId"], m["connectionId"], m["dataType"], m["data"]) for m in history] == [
        (stored_id, "u1", conn, "text", "hi")
    ]
    sent = [call.json() for call in app.recorder.sends()]
    assert [(item["type"], item.get("event")) for item in sent] == [
        ("presence", "connected"),
        ("message", None),
        ("presence", "disconnected"),
    ]
    assert sent[0] == {
        "type": "presence",
        "event": "connected",
        "userId": "u1",
        "connectionId": conn,
        "time": "2026-11-29T06:07:08.000Z",
        "user": "online",
    }
    assert sent[1] == history[0]
    assert (sent[2]["reason"], sent[2]["user"]) == ("client closed", "offline")


async def test_broadcasts_go_to_all_as_json(app: FunctionApp) -> None:
    await app.event(load("message-json").for_connection(connection()))
    [call] = app.recorder.sends()
    assert call.path == "/api/hubs/chat/:send"
    assert call.headers["content-type"].startswith("application/json")
    assert call.json()["data"] == {"a": 1}
    assert call.headers["authorization"].startswith("Bearer ")


async def test_forged_signature_is_refused_and_nothing_is_stored(app: FunctionApp) -> None:
    forged = load("message-text").for_connection(connection(), key="not-the-service-key-0123456789abcdef")
    response = await app.event(forged)
    assert response.status_code == 401
    assert b"signature" in response.get_body()
    assert await app.history() == []
    assert app.recorder.calls == []


async def test_missing_signature_is_refused(app: FunctionApp) -> None:
    response = await app.event(load("signature-missing"))
    assert response.status_code == 401


async def test_request_that_is_not_an_event_is_400_naming_the_header(app: FunctionApp) -> None:
    response = await app.event(load("not-webpubsub"))
    assert response.status_code == 400
    assert b"ce-type" in response.get_body()


async def test_redelivered_message_is_stored_once_answered_the_same_and_broadcast_again(
    app: FunctionApp,
) -> None:
    vector = load("message-text").for_connection(connection())
    first = await app.event(vector)
    again = await app.event(vector.with_headers(ce_time="2026-11-29T06:09:00Z"))
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.get_body() == again.get_body()
    assert len(await app.history()) == 1
    ids = [call.json()["id"] for call in app.recorder.sends()]
    assert ids == [body_json(first)["id"]] * 2


async def test_same_event_id_on_another_connection_is_another_message(app: FunctionApp) -> None:
    vector = load("message-text")
    await app.event(vector.for_connection(connection()))
    await app.event(vector.for_connection(connection()))
    assert len(await app.history()) == 2


@pytest.mark.parametrize(
    ("name", "data_type", "data"),
    [
        ("message-json", "json", {"a": 1}),
        ("message-json-true", "json", True),
        ("message-binary", "binary", "AP8="),
        ("message-without-content-type", "binary", "AQI="),
    ],
)
async def test_message_data_is_stored_and_listed_as_sent(
    app: FunctionApp, name: str, data_type: str, data: object
) -> None:
    response = await app.event(load(name).for_connection(connection()))
    assert response.status_code == 200
    [message] = await app.history()
    assert (message["dataType"], message["data"]) == (data_type, data)


async def test_large_binary_message_of_900_kib_is_stored_intact(app: FunctionApp) -> None:
    payload = bytes(range(256)) * (900 * 4)  # 921,600 bytes
    response = await app.event(load("message-binary").for_connection(connection()).with_body(payload))
    assert response.status_code == 200
    [message] = await app.history()
    assert base64.b64decode(message["data"]) == payload


async def test_large_text_message_of_900_kib_is_stored_intact(app: FunctionApp) -> None:
    text = ("héllo wörld ✓ " * 70_000)[: 900 * 1024 // 2]
    vector = load("message-text").for_connection(connection()).with_body(text.encode("utf-8"))
    assert len(vector.body) >= 900 * 1024 // 2
    response = await app.event(vector)
    assert response.status_code == 200
    [message] = await app.history()
    assert message["data"] == text


async def test_message_over_the_limit_is_refused_with_a_clear_413_and_not_stored(app: FunctionApp) -> None:
    payload = b"x" * (1024 * 1024 + 1)
    response = await app.event(load("message-binary").for_connection(connection()).with_body(payload))
    assert response.status_code == 413
    assert b"largest message" in response.get_body()
    assert await app.history() == []
    assert app.recorder.sends() == []


async def test_storage_down_answers_503_and_the_message_is_not_acknowledged(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devhost.processes import free_port, table_connection_string

    monkeypatch.setenv("AzureWebJobsStorage", table_connection_string(free_port()))  # nothing listens there
    monkeypatch.setenv("DependencyRetries", "0")
    await reset_services()
    response = await app.event(load("message-text").for_connection(connection()))
    assert response.status_code == 503
    assert b"nothing was changed" in response.get_body()
    assert app.recorder.sends() == []


async def test_presence_write_failure_answers_503(app: FunctionApp, monkeypatch: pytest.MonkeyPatch) -> None:
    from devhost.processes import free_port, table_connection_string

    monkeypatch.setenv("AzureWebJobsStorage", table_connection_string(free_port()))
    monkeypatch.setenv("DependencyRetries", "0")
    await reset_services()
    response = await app.event(load("connected").for_connection(connection()))
    assert response.status_code == 503


async def test_failed_broadcast_does_not_fail_the_message(
    app: FunctionApp, caplog: pytest.LogCaptureFixture
) -> None:
    app.recorder.fail_with = 500
    vector = load("message-text").for_connection(connection()).with_headers(ce_id="77")
    response = await app.event(vector)
    assert response.status_code == 200
    assert len(await app.history()) == 1
    assert "event 77" in caplog.text


async def test_failed_presence_broadcast_does_not_fail_the_event(app: FunctionApp) -> None:
    app.recorder.fail_with = 503
    response = await app.event(load("connected").for_connection(connection()))
    assert response.status_code == 200


async def test_presence_can_go_to_one_group(app: FunctionApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PresenceBroadcast", "group:lobby")
    await reset_services()
    await app.event(load("connected").for_connection(connection()))
    assert [call.path for call in app.recorder.calls] == ["/api/hubs/chat/groups/lobby/:send"]


async def test_presence_broadcast_can_be_off(app: FunctionApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PresenceBroadcast", "off")
    await reset_services()
    response = await app.event(load("connected").for_connection(connection()))
    assert response.status_code == 200
    assert app.recorder.calls == []


async def test_custom_event_is_answered_204(app: FunctionApp) -> None:
    response = await app.event(load("custom-event").for_connection(connection()))
    assert response.status_code == 204


async def test_other_charset_is_refused_with_415(app: FunctionApp) -> None:
    response = await app.event(load("message-latin1").for_connection(connection()))
    assert response.status_code == 415
    assert b"UTF-8" in response.get_body()


async def test_connect_without_user_is_rejected_401(app: FunctionApp) -> None:
    response = await app.event(load("connect-without-user"))
    assert response.status_code == 401


async def test_preflight_echoes_the_service_origin(app: FunctionApp) -> None:
    response = await app.event(load("preflight"))
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "xxx.webpubsub.azure.com"


async def test_preflight_accepts_the_connection_string_host(app: FunctionApp) -> None:
    host = app.recorder.endpoint.removeprefix("http://")
    response = await app.event(load("preflight").with_headers(WebHook_Request_Origin=host))
    assert response.headers["WebHook-Allowed-Origin"] == host


async def test_missing_setting_fails_the_request_naming_it(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WebPubSubConnectionString")
    await reset_services()
    response = await app.event(load("preflight"))
    assert response.status_code == 500
    assert b"WebPubSubConnectionString" in response.get_body()


# --- presence across devices and events out of order ------------------------------------------------------


def presence_sends(app: FunctionApp) -> list[tuple[str, str, str]]:
    return [(c.json()["event"], c.json()["connectionId"], c.json()["user"]) for c in app.recorder.sends()]


async def test_two_tabs_of_one_user_are_one_online_user(app: FunctionApp) -> None:
    tab1, tab2 = connection(), connection()
    await app.event(load("connected").for_connection(tab1))
    await app.event(load("connected").for_connection(tab2))
    await app.event(load("disconnected").for_connection(tab1))
    listed = body_json(await app.presence())
    assert [(user["userId"], user["connections"]) for user in listed["users"]] == [("u1", 1)]  # type: ignore[index]
    await app.event(load("disconnected").for_connection(tab2))
    assert presence_sends(app) == [
        ("connected", tab1, "online"),
        ("connected", tab2, "unchanged"),
        ("disconnected", tab1, "unchanged"),
        ("disconnected", tab2, "offline"),
    ]
    assert body_json(await app.presence())["users"] == []


async def test_a_connected_after_its_disconnected_leaves_no_ghost_and_says_nothing(app: FunctionApp) -> None:
    conn = connection()
    assert (await app.event(load("disconnected").for_connection(conn))).status_code == 200
    assert (await app.event(load("connected").for_connection(conn))).status_code == 200
    assert await app.online() == []
    assert presence_sends(app) == [("disconnected", conn, "offline")]


async def test_presence_lists_users_with_the_time_they_came_online(app: FunctionApp) -> None:
    await app.event(load("connected").for_connection(connection()))
    listed = body_json(await app.presence())
    assert listed["users"] == [{"userId": "u1", "connections": 1, "since": "2026-11-29T06:07:08.000Z"}]
    assert str(listed["asOf"]).endswith("Z")


async def test_presence_needs_a_user_like_history(app: FunctionApp) -> None:
    response = await app.presence(user=None)
    assert response.status_code == 401
    assert b"userId" in response.get_body()


async def test_display_names_travel_from_connect_to_presence_and_messages(app: FunctionApp) -> None:
    conn = connection()
    connect = await app.event(
        load("connect").for_connection(conn).with_body(b'{"query":{"userName":["Ann Example"]}}')
    )
    state = connect.headers["ce-connectionState"]
    assert json.loads(base64.b64decode(state)) == {"userName": "Ann Example"}
    await app.event(load("connected").for_connection(conn).with_headers(ce_connectionState=state))
    await app.event(load("message-text").for_connection(conn).with_headers(ce_connectionState=state))
    sent = [call.json() for call in app.recorder.sends()]
    assert [item.get("userName") for item in sent] == ["Ann Example", "Ann Example"]
    assert (await app.history())[0]["userName"] == "Ann Example"
    assert body_json(await app.presence())["users"][0]["userName"] == "Ann Example"  # type: ignore[index]


async def test_a_display_name_breaking_the_rules_is_not_kept(app: FunctionApp) -> None:
    connect = await app.event(
        load("connect").for_connection(connection()).with_body(b'{"query":{"userName":["ann\\u202e"]}}')
    )
    assert connect.status_code == 200
    assert "ce-connectionState" not in connect.headers
