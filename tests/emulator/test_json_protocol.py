"""The `json.webpubsub.azure.v1` subprotocol: groups, permissions, acks, data types, limits."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import aiohttp
import pytest
from emulator_harness import EmulatorRun, start_emulator, ws_client

ALL_ROLES = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    # No event handlers: the hub "plain" works on token claims alone.
    yield from start_emulator(tmp_path_factory.mktemp("json"), name="emulator-json")


def url(
    run: EmulatorRun, user: str = "u", roles: list[str] | None = None, groups: list[str] | None = None
) -> str:
    return run.emulator.client_url(
        "plain", user_id=user, roles=ALL_ROLES if roles is None else roles, groups=groups
    )


async def test_connected_system_message_names_connection_and_user(run: EmulatorRun) -> None:
    async with ws_client(url(run, "alice")) as client:
        assert set(client.connected) == {"type", "event", "connectionId", "userId"}
        assert client.connected["userId"] == "alice"


async def test_join_then_send_to_group_reaches_members_with_sender_user(run: EmulatorRun) -> None:
    async with ws_client(url(run, "a")) as a, ws_client(url(run, "b")) as b:
        await a.send({"type": "joinGroup", "group": "room", "ackId": 1})
        await b.send({"type": "joinGroup", "group": "room", "ackId": 1})
        assert await a.next_json() == {"type": "ack", "ackId": 1, "success": True}
        assert await b.next_json() == {"type": "ack", "ackId": 1, "success": True}
        await a.send({"type": "sendToGroup", "group": "room", "dataType": "json", "data": {"k": "v"}})
        expected = {
            "type": "message",
            "from": "group",
            "group": "room",
            "fromUserId": "a",
            "dataType": "json",
            "data": {"k": "v"},
        }
        assert await b.next_json() == expected
        assert await a.next_json() == expected  # echo is on by default


async def test_no_echo_skips_the_sender(run: EmulatorRun) -> None:
    async with ws_client(url(run, "a")) as a, ws_client(url(run, "b")) as b:
        for c in (a, b):
            await c.send({"type": "joinGroup", "group": "quiet", "ackId": 1})
            await c.next_json()
        await a.send(
            {
                "type": "sendToGroup",
                "group": "quiet",
                "dataType": "text",
                "data": "1",
                "noEcho": True,
                "ackId": 2,
            }
        )
        assert await a.next_json() == {"type": "ack", "ackId": 2, "success": True}
        assert (await b.next_json())["data"] == "1"


async def test_leave_group_stops_delivery(run: EmulatorRun) -> None:
    async with ws_client(url(run, "a")) as a, ws_client(url(run, "b")) as b:
        for c in (a, b):
            await c.send({"type": "joinGroup", "group": "leavers", "ackId": 1})
            await c.next_json()
        await b.send({"type": "leaveGroup", "group": "leavers", "ackId": 2})
        assert (await b.next_json())["success"] is True
        await a.send(
            {"type": "sendToGroup", "group": "leavers", "dataType": "text", "data": "x", "noEcho": True}
        )
        await b.send({"type": "ping"})
        assert await b.next_json() == {"type": "pong"}  # and no group message before it


@pytest.mark.parametrize(
    ("data_type", "data"),
    [
        ("text", "héllo"),
        ("json", [1, {"a": None}]),
        ("json", "a string"),
        ("binary", base64.b64encode(b"\x00\xfe").decode()),
    ],
)
async def test_group_data_keeps_its_type_and_value(run: EmulatorRun, data_type: str, data: object) -> None:
    async with ws_client(url(run, groups=["typed"])) as a:
        await a.send({"type": "sendToGroup", "group": "typed", "dataType": data_type, "data": data})
        msg = await a.next_json()
        assert (msg["dataType"], msg["data"]) == (data_type, data)


async def test_token_groups_are_joined_at_connect(run: EmulatorRun) -> None:
    async with (
        ws_client(url(run, "a")) as a,
        ws_client(url(run, "member", roles=[], groups=["preset"])) as member,
    ):
        await a.send({"type": "sendToGroup", "group": "preset", "dataType": "text", "data": "hi"})
        assert (await member.next_json())["data"] == "hi"


async def test_join_without_permission_is_forbidden(run: EmulatorRun) -> None:
    async with ws_client(url(run, roles=[])) as client:
        await client.send({"type": "joinGroup", "group": "g", "ackId": 9})
        ack = await client.next_json()
        assert (ack["success"], ack["error"]["name"]) == (False, "Forbidden")


async def test_send_without_permission_is_forbidden_and_not_delivered(run: EmulatorRun) -> None:
    async with ws_client(url(run, roles=["webpubsub.joinLeaveGroup"])) as client:
        await client.send({"type": "joinGroup", "group": "g", "ackId": 1})
        await client.next_json()
        await client.send({"type": "sendToGroup", "group": "g", "dataType": "text", "data": "x", "ackId": 2})
        ack = await client.next_json()
        assert (ack["ackId"], ack["error"]["name"]) == (2, "Forbidden")


async def test_group_scoped_roles_allow_only_that_group(run: EmulatorRun) -> None:
    roles = ["webpubsub.joinLeaveGroup.mine", "webpubsub.sendToGroup.mine"]
    async with ws_client(url(run, roles=roles)) as client:
        await client.send({"type": "joinGroup", "group": "mine", "ackId": 1})
        assert (await client.next_json())["success"] is True
        await client.send({"type": "joinGroup", "group": "theirs", "ackId": 2})
        assert (await client.next_json())["error"]["name"] == "Forbidden"
        await client.send(
            {"type": "sendToGroup", "group": "theirs", "dataType": "text", "data": "x", "ackId": 3}
        )
        assert (await client.next_json())["error"]["name"] == "Forbidden"


async def test_repeated_successful_ack_id_is_a_duplicate_and_not_executed_again(run: EmulatorRun) -> None:
    async with ws_client(url(run, groups=["dup"])) as client:
        frame = {"type": "sendToGroup", "group": "dup", "dataType": "text", "data": "once", "ackId": 42}
        await client.send(frame)
        assert (await client.next_json())["data"] == "once"
        assert (await client.next_json())["success"] is True
        await client.send(frame)
        ack = await client.next_json()
        assert (ack["ackId"], ack["success"], ack["error"]["name"]) == (42, False, "Duplicate")


async def test_message_without_ack_id_gets_no_ack(run: EmulatorRun) -> None:
    async with ws_client(url(run)) as client:
        await client.send({"type": "joinGroup", "group": "g"})
        await client.send({"type": "ping"})
        assert await client.next_json() == {"type": "pong"}


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "joinGroup", "ackId": 1},
        {"type": "joinGroup", "group": "   ", "ackId": 1},
        {"type": "sendToGroup", "group": "g", "dataType": "text", "data": 5, "ackId": 1},
        {"type": "sendToGroup", "group": "g", "dataType": "binary", "data": "not base64!", "ackId": 1},
        {"type": "sendToGroup", "group": "g", "dataType": "xml", "data": "x", "ackId": 1},
        {"type": "sendToGroup", "group": "g", "dataType": "json", "ackId": 1},
        {"type": "event", "dataType": "text", "data": "x", "ackId": 1},
        {"type": "teleport", "ackId": 1},
    ],
)
async def test_invalid_request_with_ack_id_gets_a_bad_request_ack(
    run: EmulatorRun, frame: dict[str, object]
) -> None:
    async with ws_client(url(run)) as client:
        await client.send(frame)
        ack = await client.next_json()
        assert (ack["type"], ack["ackId"], ack["success"], ack["error"]["name"]) == (
            "ack",
            1,
            False,
            "BadRequest",
        )
        assert ack["error"]["message"]


async def test_event_without_handler_is_acknowledged(run: EmulatorRun) -> None:
    async with ws_client(url(run)) as client:
        await client.send({"type": "event", "event": "nobody", "dataType": "text", "data": "x", "ackId": 1})
        assert await client.next_json() == {"type": "ack", "ackId": 1, "success": True}


async def test_frame_that_is_not_json_closes_with_1007(run: EmulatorRun) -> None:
    async with ws_client(url(run)) as client:
        await client.ws.send_str("{not json")
        assert (await client.receive()).type == aiohttp.WSMsgType.CLOSE
        assert client.ws.close_code == 1007


async def test_binary_frame_on_the_json_protocol_closes_with_1003(run: EmulatorRun) -> None:
    async with ws_client(url(run)) as client:
        await client.ws.send_bytes(b"\x00")
        assert (await client.receive()).type == aiohttp.WSMsgType.CLOSE
        assert client.ws.close_code == 1003


async def test_frame_over_1_mib_closes_with_1009(run: EmulatorRun) -> None:
    async with ws_client(url(run, groups=["big"])) as client:
        frame = {"type": "sendToGroup", "group": "big", "dataType": "text", "data": ""}
        frame["data"] = "x" * (1024 * 1024 + 1 - len(json.dumps(frame)))
        await client.ws.send_str(json.dumps(frame))
        assert (await client.receive()).type == aiohttp.WSMsgType.CLOSE
        assert client.ws.close_code == 1009


async def test_frame_of_exactly_1_mib_is_delivered(run: EmulatorRun) -> None:
    async with ws_client(url(run, groups=["big"]), max_msg_size=4 * 1024 * 1024) as client:
        frame = {"type": "sendToGroup", "group": "big", "dataType": "text", "data": ""}
        frame["data"] = "y" * (1024 * 1024 - len(json.dumps(frame)))
        await client.ws.send_str(json.dumps(frame))
        assert (await client.next_json())["data"] == frame["data"]


async def test_rest_close_sends_disconnected_with_the_reason(run: EmulatorRun) -> None:
    async with ws_client(url(run, "closing")) as client:
        run.emulator.service("plain").close_connection(client.connected["connectionId"], reason="bye now")
        assert await client.next_json() == {"type": "system", "event": "disconnected", "message": "bye now"}
        assert (await client.receive()).type == aiohttp.WSMsgType.CLOSE


async def test_simple_client_gets_rest_messages_as_plain_frames(run: EmulatorRun) -> None:
    service = run.emulator.service("plain")
    async with ws_client(url(run, "simple-reader"), protocol=None) as client:
        service.send_to_user("simple-reader", {"a": 1})
        service.send_to_user("simple-reader", "words", content_type="text/plain")
        service.send_to_user("simple-reader", b"\x00\x01", content_type="application/octet-stream")
        frames = [await client.receive() for _ in range(3)]
    assert [(f.type, f.data) for f in frames] == [
        (aiohttp.WSMsgType.TEXT, '{"a": 1}'),  # the body as the SDK serialized it
        (aiohttp.WSMsgType.TEXT, "words"),
        (aiohttp.WSMsgType.BINARY, b"\x00\x01"),
    ]
