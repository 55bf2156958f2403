"""JSON data goes upstream and to other clients exactly as the client wrote it, whatever it holds.

A value Python would decode lossily (`1e400`, a lone surrogate escape) or not at all (2,000 levels
of nesting) is still valid JSON text: the emulator passes its exact bytes on and keeps the
connection open, so an event handler can see it and refuse it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from azure.core.rest import HttpRequest
from emulator_harness import EmulatorRun, WsClient, start_emulator, ws_client

DEEP = "[" * 2000 + "]" * 2000
POISON = [
    pytest.param('{"n":1e400}', id="number-beyond-float"),
    pytest.param('"\\ud800"', id="lone-surrogate-escape"),
    pytest.param(DEEP, id="2000-levels"),
    pytest.param('{"a" : [ 1 ,2 ] }', id="spacing-kept"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    yield from start_emulator(
        tmp_path_factory.mktemp("jsondata"),
        "--hub", "chat", "--upstream", "{upstream}/events/{hub}/{event}",
        name="emulator-json-data",
    )  # fmt: skip


def chat_url(run: EmulatorRun, user: str = "poison") -> str:
    return run.emulator.client_url(
        "chat", user_id=user, roles=["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]
    )


def frame(kind: str, data: str, **fields: object) -> str:
    """A request frame written by hand, so that `data` is exactly the given JSON text."""
    head = json.dumps({"type": kind, "dataType": "json", **fields})
    return head[:-1] + ', "data": ' + data + "}"


async def still_open(client: WsClient) -> None:
    await client.send({"type": "ping"})
    assert await client.next_json() == {"type": "pong"}


@pytest.mark.parametrize("data", POISON)
async def test_event_data_reaches_the_upstream_as_the_exact_bytes_sent(run: EmulatorRun, data: str) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.ws.send_str(frame("event", data, event="nocontent", ackId=1))
        assert await client.next_json() == {"type": "ack", "ackId": 1, "success": True}
        event = await run.upstream.await_for(
            lambda r: r.event == "nocontent" and r.connection_id == client.connected["connectionId"]
        )
        await still_open(client)
    assert event.body == data.encode()
    assert event.headers["content-type"] == "application/json"


@pytest.mark.parametrize("data", POISON)
async def test_a_handler_refusing_the_data_fails_the_event_and_keeps_the_connection(
    run: EmulatorRun, data: str
) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.ws.send_str(frame("event", data, event="refuse", ackId=2))
        ack = await client.next_json()
        assert (ack["ackId"], ack["success"], ack["error"]["name"]) == (2, False, "InternalServerError")
        await still_open(client)


@pytest.mark.parametrize("data", POISON)
async def test_group_data_reaches_members_as_the_exact_text_sent(run: EmulatorRun, data: str) -> None:
    async with ws_client(chat_url(run, "sender")) as sender, ws_client(chat_url(run, "member")) as member:
        await member.send({"type": "joinGroup", "group": "poison", "ackId": 1})
        assert (await member.next_json())["success"] is True
        await sender.ws.send_str(frame("sendToGroup", data, group="poison", noEcho=True, ackId=1))
        assert (await sender.next_json())["success"] is True
        received = (await member.receive()).data
    assert received.endswith(',"data":' + data + "}")
    assert received.startswith('{"type":"message","from":"group","group":"poison","fromUserId":"sender"')


@pytest.mark.parametrize("data", POISON)
async def test_a_json_reply_reaches_the_sender_as_the_exact_text_the_handler_wrote(
    run: EmulatorRun, data: str
) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.ws.send_str(frame("event", data, event="echo", ackId=3))
        reply = (await client.receive()).data
        assert await client.next_json() == {"type": "ack", "ackId": 3, "success": True}
    assert reply == '{"type":"message","from":"server","dataType":"json","data":' + data + "}"


async def test_text_data_with_a_lone_surrogate_is_a_bad_request_not_a_dropped_connection(
    run: EmulatorRun,
) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.ws.send_str(
            '{"type":"event","event":"nocontent","dataType":"text","data":"\\ud800","ackId":4}'
        )
        ack = await client.next_json()
        assert (ack["ackId"], ack["error"]["name"]) == (4, "BadRequest")
        assert "surrogate" in ack["error"]["message"]
        await still_open(client)


@pytest.mark.parametrize("text", ['{"type":"ping",}', '{"type":"ping","n":NaN}', "[" * 2000])
async def test_a_frame_that_is_not_strict_json_closes_with_1007(run: EmulatorRun, text: str) -> None:
    async with ws_client(chat_url(run)) as client:
        await client.ws.send_str(text)
        assert (await client.receive()).type.name == "CLOSE"
        assert client.ws.close_code == 1007


@pytest.mark.parametrize("data", POISON)
async def test_rest_json_bodies_reach_clients_as_the_exact_text_sent(run: EmulatorRun, data: str) -> None:
    # The SDK's send_to_all would serialise a str again; send_request signs a body sent as it is.
    request = HttpRequest(
        "POST",
        "/api/hubs/chat/users/rest-reader/:send",
        params={"api-version": "2024-12-01"},
        content=data.encode(),
        headers={"Content-Type": "application/json"},
    )
    async with ws_client(chat_url(run, "rest-reader")) as client:
        response = await asyncio.to_thread(run.emulator.service("chat").send_request, request)
        assert response.status_code == 202
        received = (await client.receive()).data
    assert received == '{"type":"message","from":"server","dataType":"json","data":' + data + "}"
