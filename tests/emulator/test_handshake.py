"""Client handshake: tokens, the blocking connect event and its reply, subprotocol choice."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import aiohttp
import pytest
from emulator_harness import JSON, RELIABLE, EmulatorRun, handshake_status, start_emulator, ws_client


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    yield from start_emulator(
        tmp_path_factory.mktemp("handshake"),
        "--hub", "chat", "--upstream", "{upstream}/events/{hub}/{event}",
        "--hub", "getval", "--upstream", "{upstream}/getonly/{hub}/{event}",
        "--hub", "wrong", "--upstream", "{upstream}/wrongorigin/{hub}/{event}",
        "--hub", "down", "--upstream", "http://127.0.0.1:9/{hub}/{event}",
        "--upstream-retry-delays", "0.05,0.05,0.05",
        name="emulator-handshake",
    )  # fmt: skip


async def test_health_answers_head(run: EmulatorRun) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.head(f"{run.emulator.endpoint}/api/health") as resp,
    ):
        assert resp.status == 200


async def test_token_from_the_sdk_is_accepted_and_user_is_announced(run: EmulatorRun) -> None:
    url = run.emulator.client_url("plain", user_id="alice")
    async with ws_client(url) as client:
        assert client.connected["userId"] == "alice"
        assert client.ws.protocol == JSON
        assert client.connected["connectionId"]


async def test_token_in_authorization_header_is_accepted(run: EmulatorRun) -> None:
    token = run.emulator.token("plain", sub="bob")
    url = f"{run.emulator.ws_endpoint}/client/hubs/plain"
    async with ws_client(url, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.connected["userId"] == "bob"


async def test_query_hub_form_of_the_endpoint_is_accepted(run: EmulatorRun) -> None:
    token = run.emulator.token("plain", sub="carol")
    async with ws_client(f"{run.emulator.ws_endpoint}/client/?hub=plain&access_token={token}") as client:
        assert client.connected["userId"] == "carol"


async def test_missing_token_is_refused_with_401(run: EmulatorRun) -> None:
    assert await handshake_status(f"{run.emulator.ws_endpoint}/client/hubs/plain") == 401


async def test_token_signed_with_another_key_is_refused_with_401(run: EmulatorRun) -> None:
    token = run.emulator.token("plain", key="ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210ZYXWVUTS", sub="eve")
    assert await handshake_status(f"{run.emulator.ws_endpoint}/client/hubs/plain?access_token={token}") == 401


async def test_token_for_another_hub_is_refused_with_401(run: EmulatorRun) -> None:
    token = run.emulator.token("other", sub="eve")
    assert await handshake_status(f"{run.emulator.ws_endpoint}/client/hubs/plain?access_token={token}") == 401


async def test_token_for_another_host_is_refused_with_401(run: EmulatorRun) -> None:
    token = run.emulator.token("plain", aud="http://elsewhere.example.com/client/hubs/plain", sub="eve")
    assert await handshake_status(f"{run.emulator.ws_endpoint}/client/hubs/plain?access_token={token}") == 401


async def test_expired_token_is_refused_with_401(run: EmulatorRun) -> None:
    token = run.emulator.token("plain", exp_in=-3600, sub="eve")
    assert await handshake_status(f"{run.emulator.ws_endpoint}/client/hubs/plain?access_token={token}") == 401


async def test_audience_compares_hub_case_insensitively(run: EmulatorRun) -> None:
    token = run.emulator.token("Plain", sub="dave")
    async with ws_client(f"{run.emulator.ws_endpoint}/client/hubs/plain?access_token={token}") as client:
        assert client.connected["userId"] == "dave"


async def test_invalid_hub_name_is_refused_with_400(run: EmulatorRun) -> None:
    token = run.emulator.token("1bad", sub="eve")
    assert await handshake_status(f"{run.emulator.ws_endpoint}/client/hubs/1bad?access_token={token}") == 400


async def test_plain_http_request_to_the_client_endpoint_is_a_400(run: EmulatorRun) -> None:
    url = run.emulator.client_url("plain", user_id="x").replace("ws://", "http://")
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 400
        assert "WebSocket" in await resp.text()


async def test_connect_event_carries_claims_query_headers_and_subprotocols(run: EmulatorRun) -> None:
    url = run.emulator.client_url("chat", user_id="u1", roles=["webpubsub.joinLeaveGroup"]) + "&extra=1"
    async with ws_client(url) as client:
        connect = run.upstream.wait_for(
            lambda r: r.event == "connect" and r.connection_id == client.connected["connectionId"]
        )
    body = connect.json()
    assert connect.problems == []
    assert body["claims"]["sub"] == ["u1"]
    assert body["claims"]["role"] == ["webpubsub.joinLeaveGroup"]
    assert body["query"] == {"extra": ["1"]}  # access_token is not passed on
    assert "Authorization" not in body["headers"]
    assert body["subprotocols"] == [JSON]
    assert connect.headers["ce-userid"] == "u1"
    assert "ce-subprotocol" not in connect.headers  # nothing is negotiated before connect answers


async def test_connect_refusal_status_is_the_handshake_status(run: EmulatorRun) -> None:
    url = run.emulator.client_url("chat", user_id="u1") + "&reject=401"
    assert await handshake_status(url) == 401


async def test_connect_refusal_with_403_is_passed_on(run: EmulatorRun) -> None:
    url = run.emulator.client_url("chat", user_id="u1") + "&reject=403"
    assert await handshake_status(url) == 403


async def test_refused_connection_sends_no_connected_event(run: EmulatorRun) -> None:
    url = run.emulator.client_url("chat", user_id="refused-user") + "&reject=401"
    await handshake_status(url)
    await handshake_status(run.emulator.client_url("chat", user_id="marker"))  # a later, accepted one
    await run.upstream.await_for(lambda r: r.event == "connected" and r.headers.get("ce-userid") == "marker")
    assert not [
        r
        for r in run.upstream.requests
        if r.event == "connected" and r.headers.get("ce-userid") == "refused-user"
    ]


async def test_connect_reply_sets_user_groups_and_roles(run: EmulatorRun) -> None:
    url = (
        run.emulator.client_url("chat", user_id="token-user")
        + "&userId=handler-user&groups=g1&roles=webpubsub.sendToGroup.g1"
    )
    async with ws_client(url) as client, ws_client(url) as other:
        assert client.connected["userId"] == "handler-user"
        # joined g1 through the reply, and may send to it but not join others
        await client.send(
            {"type": "sendToGroup", "group": "g1", "dataType": "text", "data": "hi", "ackId": 1}
        )
        assert await client.next_json() == {
            "type": "message",
            "from": "group",
            "group": "g1",
            "fromUserId": "handler-user",
            "dataType": "text",
            "data": "hi",
        }
        assert await client.next_json() == {"type": "ack", "ackId": 1, "success": True}
        assert (await other.next_json())["data"] == "hi"


async def test_connect_reply_with_empty_roles_removes_token_roles(run: EmulatorRun) -> None:
    url = run.emulator.client_url("chat", user_id="u", roles=["webpubsub.joinLeaveGroup"]) + "&roles="
    async with ws_client(url) as client:
        await client.send({"type": "joinGroup", "group": "g", "ackId": 1})
        ack = await client.next_json()
        assert ack["success"] is False and ack["error"]["name"] == "Forbidden"


async def test_connect_reply_picks_the_subprotocol(run: EmulatorRun) -> None:
    url = run.emulator.client_url("chat", user_id="u") + f"&subprotocol={quote(RELIABLE)}"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, protocols=(JSON, RELIABLE)) as ws:
        assert ws.protocol == RELIABLE
        connected = await ws.receive_json(timeout=10)
        assert "reconnectionToken" in connected


async def test_without_connect_reply_the_first_supported_offered_protocol_is_used(run: EmulatorRun) -> None:
    url = run.emulator.client_url("plain", user_id="u")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, protocols=("protobuf.webpubsub.azure.v1", RELIABLE, JSON)) as ws,
    ):
        assert ws.protocol == RELIABLE


async def test_connect_reply_choosing_a_protocol_not_offered_is_a_500(run: EmulatorRun) -> None:
    url = run.emulator.client_url("chat", user_id="u") + f"&subprotocol={quote(RELIABLE)}"
    assert await handshake_status(url, protocol=JSON) == 500


async def test_abuse_protection_uses_options_before_the_first_event(run: EmulatorRun) -> None:
    async with ws_client(run.emulator.client_url("chat", user_id="u")):
        pass
    validation = run.upstream.wait_for(lambda r: r.method == "OPTIONS" and r.path == "/events/chat/validate")
    assert validation.problems == []


async def test_abuse_protection_result_is_reused_for_later_events(run: EmulatorRun) -> None:
    for _ in range(3):
        async with ws_client(run.emulator.client_url("chat", user_id="u")):
            pass
    await run.upstream.await_for(lambda r: r.event == "disconnected")
    assert (
        len([r for r in run.upstream.requests if r.method == "OPTIONS" and r.path == "/events/chat/validate"])
        == 1
    )


async def test_abuse_protection_falls_back_to_get_when_options_is_404(run: EmulatorRun) -> None:
    async with ws_client(run.emulator.client_url("getval", user_id="u")) as client:
        connect = run.upstream.wait_for(
            lambda r: r.event == "connect" and r.connection_id == client.connected["connectionId"]
        )
    assert connect.path == "/getonly/getval/connect"
    assert (
        run.upstream.wait_for(lambda r: r.method == "GET" and r.path == "/getonly/getval/validate").problems
        == []
    )


async def test_abuse_protection_failure_refuses_the_connection_without_sending_the_event(
    run: EmulatorRun,
) -> None:
    status = await handshake_status(run.emulator.client_url("wrong", user_id="u"))
    assert status == 502
    assert not [r for r in run.upstream.requests if r.method == "POST" and r.path.startswith("/wrongorigin/")]


async def test_unreachable_connect_handler_refuses_with_502(run: EmulatorRun) -> None:
    assert await handshake_status(run.emulator.client_url("down", user_id="u")) == 502


def test_connection_string_is_the_first_line_printed(run: EmulatorRun) -> None:
    assert run.emulator.log().splitlines()[0] == run.emulator.connection_string
