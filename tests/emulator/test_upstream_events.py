"""Events toward the upstream: headers, ids, signature, connection state, replies, failures, retries."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import aiohttp
import pytest
from emulator_harness import EmulatorRun, start_emulator, ws_client


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    yield from start_emulator(
        tmp_path_factory.mktemp("upstream"),
        "--hub", "chat", "--upstream", "{upstream}/events/{hub}/{event}",
        # first match wins: echo and state go to /events, everything else to /getonly
        "--hub", "routes",
        "--upstream", "{upstream}/events/{hub}/{event}",
        "--user-events", "ECHO, state", "--system-events", "connected",
        "--upstream", "{upstream}/getonly/{hub}/{event}",
        "--user-events", "*", "--system-events", "disconnected",
        "--hub", "failing", "--upstream", "{upstream}/events/{hub}/fail", "--system-events", "",
        "--upstream-retry-delays", "0.2,0.2,0.2",
        "--upstream-timeout", "1",
        name="emulator-upstream",
    )  # fmt: skip


def chat_url(run: EmulatorRun, user: str = "u1", extra: str = "") -> str:
    return run.emulator.client_url("chat", user_id=user) + extra


async def test_every_event_carries_the_cloudevents_headers_and_signature(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        conn = client.connected["connectionId"]
        await client.send({"type": "event", "event": "echo", "dataType": "text", "data": "x", "ackId": 1})
        await client.next_json()
        await client.next_json()
    await run.upstream.await_for(lambda r: r.event == "disconnected" and r.connection_id == conn)
    events = run.upstream.of(conn)
    assert [e.event for e in events] == ["connect", "connected", "echo", "disconnected"]
    assert [e.problems for e in events] == [[], [], [], []]


async def test_event_ids_count_per_connection_from_zero_for_connect(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        conn = client.connected["connectionId"]
        for ack_id in (1, 2):
            await client.send({"type": "event", "event": "nocontent", "data": {"n": ack_id}, "ackId": ack_id})
            assert (await client.next_json())["success"] is True
    await run.upstream.await_for(lambda r: r.event == "disconnected" and r.connection_id == conn)
    ids = {e.event + str(i): e.headers["ce-id"] for i, e in enumerate(run.upstream.of(conn))}
    assert sorted(ids.values(), key=int) == ["0", "1", "2", "3", "4"]
    assert ids["connect0"] == "0"


async def test_user_event_headers_say_user_and_subprotocol(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run, "someone")) as client:
        await client.send(
            {"type": "event", "event": "nocontent", "dataType": "json", "data": [1], "ackId": 1}
        )
        await client.next_json()
        event = run.upstream.wait_for(
            lambda r: r.event == "nocontent" and r.connection_id == client.connected["connectionId"]
        )
    assert event.headers["ce-userid"] == "someone"
    assert event.headers["ce-subprotocol"] == "json.webpubsub.azure.v1"
    assert event.headers["content-type"] == "application/json"
    assert event.body == b"[1]"


async def test_anonymous_connection_sends_no_user_header(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run, "")) as client:
        connected = await run.upstream.await_for(
            lambda r: r.event == "connected" and r.connection_id == client.connected["connectionId"]
        )
    assert "ce-userid" not in connected.headers


@pytest.mark.parametrize(
    ("data_type", "data", "content_type", "body"),
    [
        ("text", "héllo", "text/plain", "héllo".encode()),
        ("json", {"a": [1, "b"]}, "application/json", b'{"a": [1, "b"]}'),  # as the client wrote it
        ("binary", base64.b64encode(b"\x00\xff").decode(), "application/octet-stream", b"\x00\xff"),
    ],
)
async def test_user_event_body_and_content_type_follow_the_data_type(
    run: EmulatorRun, data_type: str, data: object, content_type: str, body: bytes
) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.send(
            {"type": "event", "event": "nocontent", "dataType": data_type, "data": data, "ackId": 7}
        )
        await client.next_json()
        event = run.upstream.wait_for(
            lambda r: r.event == "nocontent" and r.connection_id == client.connected["connectionId"]
        )
    assert event.headers["content-type"].split(";")[0] == content_type
    assert event.body == body


@pytest.mark.parametrize(
    ("data_type", "data"),
    [("text", "hi"), ("json", {"x": 1}), ("binary", base64.b64encode(b"\x01\x02").decode())],
)
async def test_user_event_reply_reaches_the_json_sender_before_the_ack(
    run: EmulatorRun, data_type: str, data: object
) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.send({"type": "event", "event": "echo", "dataType": data_type, "data": data, "ackId": 3})
        assert await client.next_json() == {
            "type": "message",
            "from": "server",
            "dataType": data_type,
            "data": data,
        }
        assert await client.next_json() == {"type": "ack", "ackId": 3, "success": True}


async def test_no_content_reply_sends_only_the_ack(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.send({"type": "event", "event": "nocontent", "data": 1, "ackId": 4})
        assert await client.next_json() == {"type": "ack", "ackId": 4, "success": True}
        await client.send({"type": "ping"})
        assert await client.next_json() == {"type": "pong"}


async def test_failing_event_handler_gives_an_internal_server_error_ack(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.send({"type": "event", "event": "fail", "data": 1, "ackId": 5})
        ack = await client.next_json()
        assert ack["ackId"] == 5 and ack["success"] is False
        assert ack["error"]["name"] == "InternalServerError"
        # the connection stays usable, and a failed ackId may be retried
        await client.send({"type": "event", "event": "nocontent", "data": 1, "ackId": 5})
        assert await client.next_json() == {"type": "ack", "ackId": 5, "success": True}


async def test_unsupported_reply_content_type_is_an_internal_server_error_ack(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.send({"type": "event", "event": "badtype", "data": 1, "ackId": 6})
        ack = await client.next_json()
        assert ack["error"]["name"] == "InternalServerError"


async def test_server_errors_are_retried_with_the_same_event_id(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.send(
            {"type": "event", "event": "flaky", "dataType": "text", "data": "again", "ackId": 8}
        )
        assert (await client.next_json())["data"] == "again"
        assert (await client.next_json())["success"] is True
        attempts = run.upstream.of(client.connected["connectionId"], "flaky")
    assert len(attempts) == 2
    assert attempts[0].headers["ce-id"] == attempts[1].headers["ce-id"]


async def test_connection_state_round_trips_through_blocking_events(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run, extra="&state=from-connect")) as client:
        await client.send(
            {"type": "event", "event": "state", "dataType": "text", "data": "second", "ackId": 1}
        )
        assert (await client.next_json())["data"] == "from-connect"
        await client.next_json()
        await client.send(
            {"type": "event", "event": "state", "dataType": "text", "data": "third", "ackId": 2}
        )
        assert (await client.next_json())["data"] == "second"
        await client.next_json()
        conn = client.connected["connectionId"]
    disconnected = await run.upstream.await_for(
        lambda r: r.event == "disconnected" and r.connection_id == conn
    )
    assert disconnected.headers["ce-connectionstate"] == "third"
    assert disconnected.json() == {"reason": ""}


async def test_simple_client_frames_are_message_events_and_replies_come_back_as_frames(
    run: EmulatorRun,
) -> None:
    async with ws_client(chat_url(run), protocol=None) as client:
        await client.ws.send_str("plain text")
        msg = await client.receive()
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.TEXT, "plain text")
        await client.ws.send_bytes(b"\x00\x01")
        msg = await client.receive()
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.BINARY, b"\x00\x01")
    texts = [r for r in run.upstream.requests if r.event == "message" and r.body == b"plain text"]
    assert texts[0].headers["content-type"].startswith("text/plain")
    assert texts[0].problems == []
    assert "ce-subprotocol" not in texts[0].headers


async def test_event_routing_takes_the_first_matching_handler_case_insensitively(run: EmulatorRun) -> None:
    async with ws_client(run.emulator.client_url("routes", user_id="r")) as client:
        conn = client.connected["connectionId"]
        await client.send({"type": "event", "event": "echo", "dataType": "text", "data": "1", "ackId": 1})
        await client.next_json()
        await client.next_json()
        await client.send({"type": "event", "event": "other", "dataType": "text", "data": "2", "ackId": 2})
        await client.next_json()
    await run.upstream.await_for(lambda r: r.event == "disconnected" and r.connection_id == conn)
    paths = [r.path for r in run.upstream.of(conn)]
    # no handler takes connect, so it is not sent and token defaults apply
    assert paths == [
        "/events/routes/connected",
        "/events/routes/echo",
        "/getonly/routes/other",
        "/getonly/routes/disconnected",
    ]


async def test_disconnected_event_follows_a_client_close(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        conn = client.connected["connectionId"]
    event = await run.upstream.await_for(lambda r: r.event == "disconnected" and r.connection_id == conn)
    assert event.problems == []


async def test_blocking_events_of_one_connection_are_sent_in_order(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        for i in range(5):
            await client.send(
                {"type": "event", "event": "nocontent", "dataType": "text", "data": str(i), "ackId": i}
            )
        acks = [await client.next_json() for _ in range(5)]
        conn = client.connected["connectionId"]
    assert [a["ackId"] for a in acks] == [0, 1, 2, 3, 4]  # each ack follows its event's answer
    assert [r.body for r in run.upstream.of(conn, "nocontent")] == [b"0", b"1", b"2", b"3", b"4"]


async def test_simple_client_is_closed_with_1011_when_the_handler_fails(run: EmulatorRun) -> None:
    async with ws_client(run.emulator.client_url("failing", user_id="s"), protocol=None) as client:
        await client.ws.send_str("anything")
        msg = await client.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert client.ws.close_code == 1011


async def test_simple_client_message_without_a_handler_closes_the_connection(run: EmulatorRun) -> None:
    async with ws_client(run.emulator.client_url("nohandler", user_id="s"), protocol=None) as client:
        await client.ws.send_str("anything")
        msg = await client.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert client.ws.close_code == 1008


async def test_handler_slower_than_the_timeout_fails_the_event_without_retrying(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.send({"type": "event", "event": "slow", "data": 1, "ackId": 1})
        ack = await client.next_json()
        assert (ack["success"], ack["error"]["name"]) == (False, "InternalServerError")
        assert len(run.upstream.of(client.connected["connectionId"], "slow")) == 1


async def test_unicode_user_id_is_sent_as_utf8(run: EmulatorRun) -> None:
    async with ws_client(chat_url(run, "jöhn 名前")) as client:
        conn = client.connected["connectionId"]
        connected = await run.upstream.await_for(lambda r: r.event == "connected" and r.connection_id == conn)
    assert connected.headers["ce-userid"] == "jöhn 名前"
