"""The `json.reliable.webpubsub.azure.v1` subprotocol: sequence ids, acks, reconnection and replay."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from azure.messaging.webpubsubservice import WebPubSubServiceClient
from emulator_harness import RELIABLE, EmulatorRun, WsClient, start_emulator, ws_client

import wps_emulator.session
from devhost.processes import free_port
from tests.constants import web_pubsub_connection_string
from wps_emulator.app import create_app
from wps_emulator.config import EmulatorConfig
from wps_emulator.hub import HubRegistry


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    yield from start_emulator(
        tmp_path_factory.mktemp("reliable"),
        "--hub", "chat", "--upstream", "{upstream}/events/{hub}/{event}",
        name="emulator-reliable",
    )  # fmt: skip


def url(run: EmulatorRun, hub: str = "plain", user: str = "r") -> str:
    return run.emulator.client_url(
        hub, user_id=user, roles=["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]
    )


def recovery_url(run: EmulatorRun, client: WsClient, hub: str = "plain", token: str | None = None) -> str:
    conn = client.connected["connectionId"]
    token = client.connected["reconnectionToken"] if token is None else token
    return f"{url(run, hub)}&awps_connection_id={conn}&awps_reconnection_token={quote(token)}"


async def drop(run: EmulatorRun, client: WsClient, hub: str = "plain") -> None:
    """Cut the client's socket server-side, without a close frame, and wait until the client sees it."""
    conn = client.connected["connectionId"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{run.emulator.endpoint}/_emulator/hubs/{hub}/connections/{conn}/drop") as resp,
    ):
        assert resp.status == 204
    while (await client.receive()).type not in (
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.ERROR,
        aiohttp.WSMsgType.CLOSE,
    ):
        pass


def send_to_group(run: EmulatorRun, group: str, text: str, hub: str = "plain") -> None:
    run.emulator.service(hub).send_to_group(group, text, content_type="text/plain")


async def test_connected_message_carries_a_reconnection_token(run: EmulatorRun) -> None:
    async with ws_client(url(run), protocol=RELIABLE) as client:
        assert client.connected["reconnectionToken"]


async def test_message_frames_carry_increasing_sequence_ids_and_acks_do_not(run: EmulatorRun) -> None:
    async with ws_client(url(run), protocol=RELIABLE) as client:
        await client.send({"type": "joinGroup", "group": "seq", "ackId": 1})
        assert await client.next_json() == {"type": "ack", "ackId": 1, "success": True}
        for text in ("a", "b"):
            await client.send({"type": "sendToGroup", "group": "seq", "dataType": "text", "data": text})
        first, second = await client.next_json(), await client.next_json()
        assert (first["sequenceId"], first["data"]) == (1, "a")
        assert (second["sequenceId"], second["data"]) == (2, "b")


async def test_reconnection_replays_unacknowledged_messages_in_order(run: EmulatorRun) -> None:
    async with ws_client(url(run), protocol=RELIABLE) as client:
        await client.send({"type": "joinGroup", "group": "replay", "ackId": 1})
        await client.next_json()
        send_to_group(run, "replay", "m1")
        send_to_group(run, "replay", "m2")
        assert (await client.next_json())["data"] == "m1"
        assert (await client.next_json())["data"] == "m2"
        await client.send({"type": "sequenceAck", "sequenceId": 1})
        await client.send({"type": "ping"})
        assert await client.next_json() == {"type": "pong"}  # the ack has been processed
        await drop(run, client)
        send_to_group(run, "replay", "m3")  # while the client is away
        async with ws_client(recovery_url(run, client), protocol=RELIABLE) as again:
            assert again.connected["connectionId"] == client.connected["connectionId"]
            replayed = [await again.next_json(), await again.next_json()]
            assert [(m["sequenceId"], m["data"]) for m in replayed] == [(2, "m2"), (3, "m3")]
            send_to_group(run, "replay", "m4")
            assert (await again.next_json())["sequenceId"] == 4


async def test_reconnected_connection_keeps_its_groups_and_user(run: EmulatorRun) -> None:
    async with ws_client(url(run, user="keeper"), protocol=RELIABLE) as client:
        await client.send({"type": "joinGroup", "group": "kept", "ackId": 1})
        await client.next_json()
        await drop(run, client)
        async with ws_client(recovery_url(run, client), protocol=RELIABLE) as again:
            assert again.connected["userId"] == "keeper"
            await again.send(
                {"type": "sendToGroup", "group": "kept", "dataType": "text", "data": "still here"}
            )
            msg = await again.next_json()
            assert (msg["group"], msg["fromUserId"], msg["data"]) == ("kept", "keeper", "still here")


async def test_reconnection_with_a_wrong_token_is_closed_with_1008(run: EmulatorRun) -> None:
    async with ws_client(url(run), protocol=RELIABLE) as client:
        await drop(run, client)
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(recovery_url(run, client, token="forged"), protocols=(RELIABLE,))
            assert (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1008


async def test_reconnection_after_a_clean_close_is_closed_with_1008(run: EmulatorRun) -> None:
    async with ws_client(url(run), protocol=RELIABLE) as client:
        pass
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(recovery_url(run, client), protocols=(RELIABLE,))
        assert (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1008


async def test_a_drop_and_reconnection_send_no_disconnected_or_second_connected_event(
    run: EmulatorRun,
) -> None:
    async with ws_client(url(run, hub="chat"), protocol=RELIABLE) as client:
        conn = client.connected["connectionId"]
        await run.upstream.await_for(lambda r: r.event == "connected" and r.connection_id == conn)
        await drop(run, client, hub="chat")
        async with ws_client(recovery_url(run, client, hub="chat"), protocol=RELIABLE) as again:
            await again.send({"type": "event", "event": "nocontent", "data": 1, "ackId": 1})
            assert (await again.next_json())["success"] is True
    await run.upstream.await_for(lambda r: r.event == "disconnected" and r.connection_id == conn)
    assert [r.event for r in run.upstream.of(conn)] == ["connect", "connected", "nocontent", "disconnected"]


async def test_dropped_connection_stays_in_the_hub_while_it_may_come_back(run: EmulatorRun) -> None:
    async with ws_client(url(run), protocol=RELIABLE) as client:
        conn = client.connected["connectionId"]
        await drop(run, client)
        # Once the emulator has noticed the lost socket, the connection waits (30 s) instead of ending.
        await run.emulator.wait_for_log(f"connection plain/{conn} lost its socket; waiting")
        assert run.emulator.service("plain").connection_exists(conn)


async def test_more_than_1000_unacknowledged_messages_end_the_connection(run: EmulatorRun) -> None:
    async with (
        ws_client(url(run, hub="chat"), protocol=RELIABLE) as client,
        ws_client(url(run, hub="chat")) as sender,
    ):
        conn = client.connected["connectionId"]
        await client.send({"type": "joinGroup", "group": "flood", "ackId": 1})
        await client.next_json()
        await drop(run, client, hub="chat")
        for i in range(1001):
            await sender.send({"type": "sendToGroup", "group": "flood", "dataType": "text", "data": str(i)})
        event = await run.upstream.await_for(lambda r: r.event == "disconnected" and r.connection_id == conn)
        assert "unacknowledged" in event.json()["reason"]
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(recovery_url(run, client, hub="chat"), protocols=(RELIABLE,))
            assert (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1008


async def test_connection_not_recovered_in_time_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process, with a short recovery window: the window itself (30 s) is too long for a test.
    monkeypatch.setattr(wps_emulator.session, "RECOVERY_WINDOW_SECONDS", 0.2)
    registry = HubRegistry()
    config = EmulatorConfig(port=free_port(), test_hooks=True)
    async with TestServer(create_app(config, registry), host="127.0.0.1", port=config.port):
        endpoint = f"http://127.0.0.1:{config.port}"
        service = WebPubSubServiceClient.from_connection_string(
            web_pubsub_connection_string(endpoint), hub="h"
        )
        async with ws_client(
            service.get_client_access_token(user_id="x")["url"], protocol=RELIABLE
        ) as client:
            conn = client.connected["connectionId"]
            assert registry.hub("h").get(conn) is not None
            async with aiohttp.ClientSession() as session:
                await session.post(f"{endpoint}/_emulator/hubs/h/connections/{conn}/drop")
            for _ in range(100):
                if registry.hub("h").get(conn) is None:
                    break
                await asyncio.sleep(0.05)
            assert registry.hub("h").get(conn) is None
