"""Microsoft's Python client (`azure-messaging-webpubsubclient`, aio) against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from azure.messaging.webpubsubclient.aio import WebPubSubClient, WebPubSubClientCredential
from azure.messaging.webpubsubclient.models import (
    CallbackType,
    SendMessageError,
    WebPubSubDataType,
    WebPubSubProtocolType,
)
from emulator_harness import EmulatorRun, start_emulator

ROLES = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]
PROTOCOLS = [WebPubSubProtocolType.JSON, WebPubSubProtocolType.JSON_RELIABLE]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    yield from start_emulator(
        tmp_path_factory.mktemp("pyclient"),
        "--hub", "chat", "--upstream", "{upstream}/events/{hub}/{event}",
        "--upstream-retry-delays", "0.05,0.05,0.05",
        name="emulator-pyclient",
    )  # fmt: skip


class Inbox:
    """What a client received, by callback."""

    def __init__(self) -> None:
        self.group: asyncio.Queue[Any] = asyncio.Queue()
        self.server: asyncio.Queue[Any] = asyncio.Queue()
        self.connected: list[Any] = []
        self.disconnected: list[Any] = []

    async def on_group(self, args: Any) -> None:
        self.group.put_nowait(args)

    async def on_server(self, args: Any) -> None:
        self.server.put_nowait(args)

    async def on_connected(self, args: Any) -> None:
        self.connected.append(args)

    async def connection(self) -> Any:
        """The connected-callback arguments (callbacks run as tasks, so wait for it)."""
        for _ in range(200):
            if self.connected:
                return self.connected[0]
            await asyncio.sleep(0.02)
        raise AssertionError("the connected callback did not run")

    async def on_disconnected(self, args: Any) -> None:
        self.disconnected.append(args)


@asynccontextmanager
async def sdk_client(
    run: EmulatorRun,
    protocol: WebPubSubProtocolType,
    user: str = "py",
    roles: list[str] = ROLES,
    **options: Any,
) -> AsyncIterator[tuple[WebPubSubClient, Inbox]]:
    service = run.emulator.service("chat")

    async def url() -> str:
        return str(service.get_client_access_token(user_id=user, roles=roles)["url"])

    client = WebPubSubClient(WebPubSubClientCredential(url), protocol_type=protocol, **options)
    inbox = Inbox()
    await client.subscribe(CallbackType.GROUP_MESSAGE, inbox.on_group)
    await client.subscribe(CallbackType.SERVER_MESSAGE, inbox.on_server)
    await client.subscribe(CallbackType.CONNECTED, inbox.on_connected)
    await client.subscribe(CallbackType.DISCONNECTED, inbox.on_disconnected)
    await client.open()
    try:
        yield client, inbox
    finally:
        await client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_client_connects_with_its_protocol_and_user(
    run: EmulatorRun, protocol: WebPubSubProtocolType
) -> None:
    async with sdk_client(run, protocol, user="py-user") as (_, inbox):
        connection = await inbox.connection()
        assert connection.user_id == "py-user"
        connect = run.upstream.wait_for(
            lambda r: r.event == "connected" and r.connection_id == connection.connection_id
        )
        assert connect.headers["ce-subprotocol"] == protocol.value


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_join_and_send_to_group_reach_other_clients(
    run: EmulatorRun, protocol: WebPubSubProtocolType
) -> None:
    async with (
        sdk_client(run, protocol, user="a") as (a, a_inbox),
        sdk_client(run, protocol, user="b") as (b, b_inbox),
    ):
        await a.join_group("py-room")
        await b.join_group("py-room")
        await a.send_to_group("py-room", {"hello": "world"}, WebPubSubDataType.JSON, no_echo=True)
        await a.send_to_group("py-room", "text too", WebPubSubDataType.TEXT)
        first = await asyncio.wait_for(b_inbox.group.get(), 10)
        assert (first.group, first.data, first.from_user_id) == ("py-room", {"hello": "world"}, "a")
        assert (await asyncio.wait_for(b_inbox.group.get(), 10)).data == "text too"
        assert (
            await asyncio.wait_for(a_inbox.group.get(), 10)
        ).data == "text too"  # the no-echo one skipped a


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_rest_send_to_group_arrives_as_a_group_message_without_a_sender(
    run: EmulatorRun, protocol: WebPubSubProtocolType
) -> None:
    service = run.emulator.service("chat")
    async with sdk_client(run, protocol, user="listener") as (client, inbox):
        await client.join_group("announcements")
        service.send_to_group("announcements", {"notice": "hello"})
        message = await asyncio.wait_for(inbox.group.get(), 10)
        assert (message.group, message.data, message.from_user_id) == (
            "announcements",
            {"notice": "hello"},
            None,
        )
        service.send_to_all("to everyone", content_type="text/plain")
        assert (await asyncio.wait_for(inbox.server.get(), 10)).data == "to everyone"
        assert inbox.group.empty()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_event_reply_arrives_as_a_server_message(
    run: EmulatorRun, protocol: WebPubSubProtocolType
) -> None:
    async with sdk_client(run, protocol) as (client, inbox):
        connection = await inbox.connection()
        await client.send_event("echo", "ping-pong", WebPubSubDataType.TEXT)
        reply = await asyncio.wait_for(inbox.server.get(), 10)
        assert (reply.data_type, reply.data) == ("text", "ping-pong")
        event = run.upstream.wait_for(
            lambda r: r.event == "echo" and r.connection_id == connection.connection_id
        )
        assert event.problems == []
        assert event.body == b"ping-pong"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_failing_event_handler_raises_send_message_error(
    run: EmulatorRun, protocol: WebPubSubProtocolType
) -> None:
    async with sdk_client(run, protocol, message_retry_total=0) as (client, _):
        with pytest.raises(SendMessageError) as raised:
            await client.send_event("fail", "x", WebPubSubDataType.TEXT)
        assert raised.value.error_detail.name == "InternalServerError"


async def test_join_without_permission_raises_forbidden(run: EmulatorRun) -> None:
    async with sdk_client(run, WebPubSubProtocolType.JSON, roles=[], message_retry_total=0) as (client, _):
        with pytest.raises(SendMessageError) as raised:
            await client.join_group("closed")
        assert raised.value.error_detail.name == "Forbidden"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_revoked_group_refuses_join_and_send_even_under_roles_for_every_group(
    run: EmulatorRun, protocol: WebPubSubProtocolType
) -> None:
    service = run.emulator.service("chat")
    async with sdk_client(run, protocol, user="limited", message_retry_total=0) as (client, inbox):
        connection_id = (await inbox.connection()).connection_id
        await client.join_group("secret")
        service.revoke_permission("sendToGroup", connection_id, target_name="secret")
        service.revoke_permission("joinLeaveGroup", connection_id, target_name="secret")
        assert service.has_permission("sendToGroup", connection_id, target_name="secret") is False
        assert service.has_permission("sendToGroup", connection_id, target_name="open") is True
        with pytest.raises(SendMessageError) as refused_send:
            await client.send_to_group("secret", "psst", WebPubSubDataType.TEXT)
        with pytest.raises(SendMessageError) as refused_join:
            await client.join_group("secret")
        assert refused_send.value.error_detail.name == refused_join.value.error_detail.name == "Forbidden"
        await client.join_group("open")
        await client.send_to_group("open", "fine", WebPubSubDataType.TEXT)
        assert (await asyncio.wait_for(inbox.group.get(), 10)).data == "fine"


async def test_reliable_client_recovers_from_a_dropped_socket_without_losing_messages(
    run: EmulatorRun,
) -> None:
    service = run.emulator.service("chat")
    async with sdk_client(run, WebPubSubProtocolType.JSON_RELIABLE, user="survivor") as (client, inbox):
        await client.join_group("lossless")
        connection_id = (await inbox.connection()).connection_id
        for i in range(5):
            service.send_to_group("lossless", f"m{i}", content_type="text/plain")
        received = [(await asyncio.wait_for(inbox.group.get(), 10)).data for _ in range(5)]

        async with aiohttp.ClientSession() as session:
            hook = f"{run.emulator.endpoint}/_emulator/hubs/chat/connections/{connection_id}/drop"
            async with session.post(hook) as resp:
                assert resp.status == 204
        for i in range(5, 10):  # sent while the client is away or reconnecting
            service.send_to_group("lossless", f"m{i}", content_type="text/plain")
        received += [(await asyncio.wait_for(inbox.group.get(), 20)).data for _ in range(5)]

        assert received == [f"m{i}" for i in range(10)]
        assert inbox.group.empty()
        assert inbox.disconnected == []  # recovered, not reconnected as a new connection
        await client.send_to_group("lossless", "after", WebPubSubDataType.TEXT)
        assert (await asyncio.wait_for(inbox.group.get(), 10)).data == "after"
    assert [r.event for r in run.upstream.of(connection_id) if r.event != "disconnected"] == [
        "connect",
        "connected",
    ]
    assert "reconnected" in run.emulator.log()
