"""The emulator's REST API, judged by Microsoft's `azure-messaging-webpubsubservice` (sync and aio).

A real aiohttp server (HubRegistry + `wps_emulator.rest.setup`) runs on a free port in a background
thread for the module. Connections are registered straight into the hub with recording channels, so
each test sees exactly what the service would push to clients or which clients it would close.
Requests the SDK cannot make (bad content types, malformed tokens, :addToGroups) are sent with urllib
and signed the way the SDK signs.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.messaging.webpubsubservice import WebPubSubServiceClient
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient as AioWebPubSubServiceClient

from devhost.processes import free_port
from tests.constants import ACCESS_KEY, web_pubsub_connection_string
from tests.keyless.local_issuer import SigningKey
from wps_emulator import rest
from wps_emulator.hosts import HostPolicy
from wps_emulator.hub import Connection, HubRegistry
from wps_emulator.messages import ServerMessage

T = TypeVar("T")


@dataclass
class RecordingChannel:
    """A client as the hub sees it: records what it is sent and whether it is closed."""

    messages: list[ServerMessage] = field(default_factory=list)
    closed: list[str | None] = field(default_factory=list)

    async def deliver(self, message: ServerMessage) -> None:
        self.messages.append(message)

    async def close(self, reason: str | None) -> None:
        self.closed.append(reason)


class RestServer:
    """The REST API on a real socket, its event loop in a background thread."""

    def __init__(self) -> None:
        self.registry = HubRegistry()
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="rest-server", daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> RestServer:
        self._thread.start()
        self.run(self._start)
        return self

    async def _start(self) -> None:
        app = web.Application()
        rest.setup(app, registry=self.registry, access_key=ACCESS_KEY, hosts=HostPolicy(self.endpoint))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's loop (the hub state lives there) and wait for it."""

        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=10)

    def connect(
        self, hub: str, connection_id: str, user_id: str | None = None, *groups: str
    ) -> RecordingChannel:
        channel = RecordingChannel()

        async def add() -> None:
            conn = Connection(connection_id=connection_id, hub=hub, user_id=user_id, channel=channel)
            self.registry.hub(hub).add(conn)
            conn.groups |= set(groups)

        self.run(add)
        return channel

    def connection(self, hub: str, connection_id: str) -> Connection:
        async def get() -> Connection:
            conn = self.registry.hub(hub).get(connection_id)
            assert conn is not None
            return conn

        return self.run(get)


@pytest.fixture(scope="module")
def server() -> Iterator[RestServer]:
    running = RestServer().start()
    try:
        yield running
    finally:
        running.stop()


_hub_numbers = itertools.count(1)


@pytest.fixture
def hub() -> str:
    """A fresh hub name per test, so tests never see each other's connections."""
    return f"Hub{next(_hub_numbers)}"


@pytest.fixture
def client(server: RestServer, hub: str) -> Iterator[WebPubSubServiceClient]:
    cs = web_pubsub_connection_string(server.endpoint)
    with WebPubSubServiceClient.from_connection_string(cs, hub=hub, retry_total=0) as sdk:
        yield sdk


def sdk_token(url: str, *, key: str = ACCESS_KEY, lifetime: int = 60) -> str:
    """A REST bearer token exactly as the SDK makes one: aud = the full URL, exp = now + 60 s."""
    return jwt.encode({"aud": url, "exp": int(time.time()) + lifetime}, key, algorithm="HS256")


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    server: RestServer,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    content_type: str | None = None,
    token: str | None = None,
    authorization: str | None = None,
) -> Reply:
    """One raw REST call (no header added but these); by default signed like the SDK signs it."""
    url = server.endpoint + path
    headers = {"Authorization": authorization or f"Bearer {token or sdk_token(url)}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.read())
    finally:
        connection.close()


def received(channel: RecordingChannel) -> list[tuple[str, bytes]]:
    return [(m.data_type, m.data) for m in channel.messages]


# --- sends ---------------------------------------------------------------------------------------


def test_send_to_all_json_reaches_every_connection_as_json(server, hub, client) -> None:
    a, b = server.connect(hub, "c1", "alice"), server.connect(hub, "c2")
    client.send_to_all({"type": "msg", "text": "hé"})
    for channel in (a, b):
        [message] = channel.messages
        assert message.data_type == "json"
        assert message.source == "server"
        assert json.loads(message.data) == {"type": "msg", "text": "hé"}


def test_send_to_all_text_plain_arrives_as_text(server, hub, client) -> None:
    channel = server.connect(hub, "c1")
    client.send_to_all("hello wörld", content_type="text/plain")
    assert received(channel) == [("text", "hello wörld".encode())]


def test_send_to_all_octet_stream_arrives_as_binary(server, hub, client) -> None:
    channel = server.connect(hub, "c1")
    client.send_to_all(b"\x00\x01\xffbin", content_type="application/octet-stream")
    assert received(channel) == [("binary", b"\x00\x01\xffbin")]


def test_send_of_a_str_without_content_type_arrives_as_a_json_string(server, hub, client) -> None:
    channel = server.connect(hub, "c1")
    client.send_to_all("hello")
    assert received(channel) == [("json", b'"hello"')]


def test_send_to_all_skips_excluded_connections(server, hub, client) -> None:
    a, b, c = (server.connect(hub, cid) for cid in ("c1", "c2", "c3"))
    client.send_to_all({"n": 1}, excluded=["c1", "c3"])
    assert (len(a.messages), len(b.messages), len(c.messages)) == (0, 1, 0)


def test_send_to_all_with_filter_reaches_only_matching_connections(server, hub, client) -> None:
    alice = server.connect(hub, "c1", "alice", "room1")
    bob = server.connect(hub, "c2", "bob", "room1")
    anon = server.connect(hub, "c3", None)
    client.send_to_all("x", content_type="text/plain", filter="'room1' in groups and userId ne 'alice'")
    assert (len(alice.messages), len(bob.messages), len(anon.messages)) == (0, 1, 0)


def test_send_to_group_reaches_members_only_even_with_an_encoded_group_name(server, hub, client) -> None:
    group = "room 1/ä"
    member = server.connect(hub, "c1", "alice", group)
    excluded = server.connect(hub, "c2", "bob", group)
    outsider = server.connect(hub, "c3", "carol", "room 1")
    client.send_to_group(group, {"m": 1}, excluded=["c2"])
    assert received(member) == [("json", b'{"m": 1}')]
    assert excluded.messages == [] and outsider.messages == []


def test_send_to_group_is_a_group_message_without_a_sender(server, hub, client) -> None:
    member = server.connect(hub, "c1", "alice", "room")
    client.send_to_group("room", "hi", content_type="text/plain")
    [message] = member.messages
    assert (message.source, message.group, message.from_user_id) == ("group", "room", None)


def test_sends_to_all_users_and_connections_are_server_messages(server, hub, client) -> None:
    channel = server.connect(hub, "c1", "alice", "room")
    client.send_to_all("a", content_type="text/plain")
    client.send_to_user("alice", "b", content_type="text/plain")
    client.send_to_connection("c1", "c", content_type="text/plain")
    assert [(m.source, m.group) for m in channel.messages] == [("server", None)] * 3


def test_send_to_group_with_filter(server, hub, client) -> None:
    alice = server.connect(hub, "c1", "alice", "g")
    bob = server.connect(hub, "c2", "bob", "g")
    client.send_to_group("g", "hi", content_type="text/plain", filter="userId eq 'bob'")
    assert (len(alice.messages), len(bob.messages)) == (0, 1)


def test_send_to_user_reaches_every_connection_of_that_user(server, hub, client) -> None:
    first = server.connect(hub, "c1", "user@x.com")
    second = server.connect(hub, "c2", "user@x.com")
    other = server.connect(hub, "c3", "other")
    client.send_to_user("user@x.com", "hi", content_type="text/plain")
    assert received(first) == received(second) == [("text", b"hi")]
    assert other.messages == []


def test_send_to_user_with_filter(server, hub, client) -> None:
    first = server.connect(hub, "c1", "u1")
    second = server.connect(hub, "c2", "u1")
    client.send_to_user("u1", {"a": 1}, filter="connectionId ne 'c1'")
    assert (len(first.messages), len(second.messages)) == (0, 1)


def test_send_to_connection_reaches_that_connection_only(server, hub, client) -> None:
    target, other = server.connect(hub, "c1", "u"), server.connect(hub, "c2", "u")
    client.send_to_connection("c1", {"m": 2})
    assert received(target) == [("json", b'{"m": 2}')]
    assert other.messages == []


def test_sends_to_missing_targets_are_accepted(server, hub, client) -> None:
    client.send_to_connection("nobody", {"m": 1})
    client.send_to_user("nobody", {"m": 1})
    client.send_to_group("empty", {"m": 1})


def test_sends_keep_their_order(server, hub, client) -> None:
    channel = server.connect(hub, "c1")
    for n in range(5):
        client.send_to_all(str(n), content_type="text/plain")
    assert [m.data for m in channel.messages] == [b"0", b"1", b"2", b"3", b"4"]


def test_bad_filter_is_a_400_naming_what_is_unsupported(server, hub, client) -> None:
    channel = server.connect(hub, "c1", "alice")
    with pytest.raises(HttpResponseError) as raised:
        client.send_to_all({"m": 1}, filter="length(userId) gt 3")
    assert raised.value.status_code == 400
    assert "function length() is not supported" in str(raised.value)
    assert channel.messages == []


def test_malformed_filter_is_a_400_saying_where(server, hub, client) -> None:
    with pytest.raises(HttpResponseError) as raised:
        client.send_to_group("g", {"m": 1}, filter="userId eq 'alice")
    assert raised.value.status_code == 400
    assert "unterminated string literal (at position 10)" in str(raised.value)


def test_unsupported_content_type_is_a_400_listing_the_supported_ones(server, hub) -> None:
    reply = call(server, "POST", f"/api/hubs/{hub}/:send", b"<p>hi</p>", content_type="text/html")
    assert reply.status == 400
    assert reply.json()["target"] == "Content-Type"
    assert "application/json, text/plain or application/octet-stream" in reply.json()["message"]


def test_errors_carry_their_code_in_x_ms_error_code(server, hub) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(
            "POST", f"/api/hubs/{hub}/:send", body=b"{}", headers={"Content-Type": "text/html"}
        )
        response = connection.getresponse()
        assert response.status == 401
        assert response.getheader("x-ms-error-code") == "Unauthorized"
        assert json.loads(response.read())["code"] == "Unauthorized"
    finally:
        connection.close()


def test_missing_content_type_is_a_400(server, hub) -> None:
    reply = call(server, "POST", f"/api/hubs/{hub}/:send", b"hi")
    assert reply.status == 400
    assert "missing Content-Type" in reply.json()["message"]


def test_invalid_json_body_is_a_400_and_nothing_is_delivered(server, hub) -> None:
    channel = server.connect(hub, "c1")
    reply = call(server, "POST", f"/api/hubs/{hub}/:send", b"{not json", content_type="application/json")
    assert reply.status == 400
    assert "not valid JSON" in reply.json()["message"]
    assert channel.messages == []


def test_text_that_is_not_utf8_is_a_400(server, hub) -> None:
    reply = call(server, "POST", f"/api/hubs/{hub}/:send", b"\xff\xfe", content_type="text/plain")
    assert reply.status == 400
    assert "not valid UTF-8" in reply.json()["message"]


def test_a_charset_other_than_utf8_is_a_400(server, hub) -> None:
    reply = call(server, "POST", f"/api/hubs/{hub}/:send", b"hi", content_type="text/plain; charset=latin-1")
    assert reply.status == 400
    assert "charset" in reply.json()["message"]


def test_utf8_charset_parameter_is_accepted(server, hub) -> None:
    channel = server.connect(hub, "c1")
    reply = call(server, "POST", f"/api/hubs/{hub}/:send", b"hi", content_type="text/plain; charset=utf-8")
    assert reply.status == 202
    assert received(channel) == [("text", b"hi")]


def test_message_ttl_out_of_range_is_a_400(server, hub) -> None:
    path = f"/api/hubs/{hub}/:send?messageTtlSeconds=301"
    reply = call(server, "POST", path, b"{}", content_type="application/json")
    assert reply.status == 400
    assert reply.json()["target"] == "messageTtlSeconds"


def test_a_body_over_the_app_limit_is_a_json_413(server, hub) -> None:
    channel = server.connect(hub, "c1")
    body = b"x" * (1024**2 + 1)  # aiohttp's default client_max_size, which this test app keeps
    reply = call(server, "POST", f"/api/hubs/{hub}/:send", body, content_type="application/octet-stream")
    assert reply.status == 413
    assert reply.json()["code"] == "PayloadTooLarge"
    assert channel.messages == []


# --- group membership ------------------------------------------------------------------------------


def test_add_connection_to_group_makes_it_receive_group_sends(server, hub, client) -> None:
    channel = server.connect(hub, "c1")
    client.add_connection_to_group("room1", "c1")
    client.send_to_group("room1", {"m": 1})
    assert len(channel.messages) == 1
    assert client.group_exists("room1")


def test_add_missing_connection_to_group_is_not_found(server, hub, client) -> None:
    with pytest.raises(ResourceNotFoundError, match="'ghost' is not connected"):
        client.add_connection_to_group("room1", "ghost")


def test_remove_connection_from_group(server, hub, client) -> None:
    server.connect(hub, "c1", None, "room1", "room2")
    client.remove_connection_from_group("room1", "c1")
    assert server.connection(hub, "c1").groups == {"room2"}


def test_remove_unknown_connection_from_group_is_still_204(server, hub, client) -> None:
    client.remove_connection_from_group("room1", "ghost")


def test_remove_connection_from_all_groups(server, hub, client) -> None:
    server.connect(hub, "c1", None, "room1", "room2")
    client.remove_connection_from_all_groups("c1")
    assert server.connection(hub, "c1").groups == set()


def test_add_user_to_group_covers_all_their_connections(server, hub, client) -> None:
    server.connect(hub, "c1", "u1")
    server.connect(hub, "c2", "u1")
    server.connect(hub, "c3", "u2")
    client.add_user_to_group("room1", "u1")
    assert [server.connection(hub, c).groups for c in ("c1", "c2", "c3")] == [{"room1"}, {"room1"}, set()]


def test_add_user_to_group_covers_their_later_connections(server, hub, client) -> None:
    client.add_user_to_group("room1", "u1")
    server.connect(hub, "c1", "u1")
    assert server.connection(hub, "c1").groups == {"room1"}


def test_remove_user_from_group(server, hub, client) -> None:
    server.connect(hub, "c1", "u1", "room1", "room2")
    client.remove_user_from_group("room1", "u1")
    assert server.connection(hub, "c1").groups == {"room2"}


def test_remove_user_from_all_groups(server, hub, client) -> None:
    server.connect(hub, "c1", "u1", "room1", "room2")
    client.remove_user_from_all_groups("u1")
    assert server.connection(hub, "c1").groups == set()


def test_add_to_groups_adds_the_filtered_connections(server, hub) -> None:
    server.connect(hub, "c1", "alice")
    server.connect(hub, "c2", "bob")
    body = json.dumps({"groups": ["g1", "g2"], "filter": "userId eq 'bob'"}).encode()
    reply = call(server, "POST", f"/api/hubs/{hub}/:addToGroups", body, content_type="application/json")
    assert reply.status == 200
    assert server.connection(hub, "c1").groups == set()
    assert server.connection(hub, "c2").groups == {"g1", "g2"}


def test_remove_from_groups_removes_the_filtered_connections(server, hub) -> None:
    server.connect(hub, "c1", "alice", "g1", "g2")
    server.connect(hub, "c2", "bob", "g1", "g2")
    body = json.dumps({"groups": ["g1"], "filter": "'g2' in groups and userId ne 'bob'"}).encode()
    reply = call(server, "POST", f"/api/hubs/{hub}/:removeFromGroups", body, content_type="application/json")
    assert reply.status == 200
    assert server.connection(hub, "c1").groups == {"g2"}
    assert server.connection(hub, "c2").groups == {"g1", "g2"}


@pytest.mark.parametrize(
    ("body", "target"),
    [
        (b"[]", "body"),
        (b'{"groups": []}', "groups"),
        (b'{"groups": ["   "]}', "groups"),
        (b'{"groups": ["g"], "filter": "userId gt 1"}', "filter"),
        (b"{oops", "body"),
    ],
)
def test_add_to_groups_with_a_bad_body_is_a_400(server, hub, body: bytes, target: str) -> None:
    reply = call(server, "POST", f"/api/hubs/{hub}/:addToGroups", body, content_type="application/json")
    assert reply.status == 400
    assert reply.json()["target"] == target


# --- closing -----------------------------------------------------------------------------------------


def test_close_connection_passes_the_reason(server, hub, client) -> None:
    target, other = server.connect(hub, "c1"), server.connect(hub, "c2")
    client.close_connection("c1", reason="bye now")
    assert target.closed == ["bye now"]
    assert other.closed == []


def test_close_connection_without_reason(server, hub, client) -> None:
    channel = server.connect(hub, "c1")
    client.close_connection("c1")
    assert channel.closed == [None]


def test_close_unknown_connection_is_still_204(server, hub, client) -> None:
    client.close_connection("ghost")


def test_close_all_connections_spares_the_excluded(server, hub, client) -> None:
    a, b = server.connect(hub, "c1"), server.connect(hub, "c2")
    client.close_all_connections(excluded=["c2"], reason="maintenance")
    assert (a.closed, b.closed) == (["maintenance"], [])


def test_close_group_connections(server, hub, client) -> None:
    member, outsider = server.connect(hub, "c1", None, "g"), server.connect(hub, "c2")
    client.close_group_connections("g", reason="r")
    assert (member.closed, outsider.closed) == (["r"], [])


def test_close_user_connections(server, hub, client) -> None:
    first, second = server.connect(hub, "c1", "u1"), server.connect(hub, "c2", "u1")
    other = server.connect(hub, "c3", "u2")
    client.close_user_connections("u1", excluded=["c2"])
    assert (first.closed, second.closed, other.closed) == ([None], [], [])


# --- existence -----------------------------------------------------------------------------------------


def test_exists_checks_answer_true_and_false(server, hub, client) -> None:
    server.connect(hub, "c1", "u1", "room1")
    assert client.connection_exists("c1") is True
    assert client.connection_exists("c2") is False
    assert client.user_exists("u1") is True
    assert client.user_exists("u2") is False
    assert client.group_exists("room1") is True
    assert client.group_exists("room2") is False


def test_hub_names_compare_case_insensitively(server, hub) -> None:
    server.connect(hub, "c1")
    cs = web_pubsub_connection_string(server.endpoint)
    with WebPubSubServiceClient.from_connection_string(cs, hub=hub.upper(), retry_total=0) as upper:
        assert upper.connection_exists("c1")


# --- permissions ---------------------------------------------------------------------------------------


def test_grant_then_has_then_revoke_a_group_permission(server, hub, client) -> None:
    server.connect(hub, "c1")
    assert client.has_permission("sendToGroup", "c1", target_name="room1") is False
    client.grant_permission("sendToGroup", "c1", target_name="room1")
    assert client.has_permission("sendToGroup", "c1", target_name="room1") is True
    assert client.has_permission("sendToGroup", "c1", target_name="room2") is False
    assert server.connection(hub, "c1").roles == {"webpubsub.sendToGroup.room1"}
    client.revoke_permission("sendToGroup", "c1", target_name="room1")
    assert client.has_permission("sendToGroup", "c1", target_name="room1") is False


def test_a_permission_without_target_covers_every_group(server, hub, client) -> None:
    server.connect(hub, "c1")
    client.grant_permission("joinLeaveGroup", "c1")
    assert client.has_permission("joinLeaveGroup", "c1", target_name="any") is True
    assert client.has_permission("joinLeaveGroup", "c1") is True
    assert client.has_permission("sendToGroup", "c1") is False


def test_revoking_one_group_denies_it_even_under_a_role_for_every_group(server, hub, client) -> None:
    server.connect(hub, "c1")
    client.grant_permission("sendToGroup", "c1")
    client.revoke_permission("sendToGroup", "c1", target_name="secret")
    assert client.has_permission("sendToGroup", "c1", target_name="secret") is False
    assert client.has_permission("sendToGroup", "c1", target_name="lobby") is True


def test_granting_the_revoked_group_again_allows_it(server, hub, client) -> None:
    server.connect(hub, "c1")
    client.grant_permission("sendToGroup", "c1")
    client.revoke_permission("sendToGroup", "c1", target_name="secret")
    client.grant_permission("sendToGroup", "c1", target_name="secret")
    assert client.has_permission("sendToGroup", "c1", target_name="secret") is True


def test_granting_every_group_lifts_the_group_revokes_of_that_permission(server, hub, client) -> None:
    server.connect(hub, "c1")
    client.revoke_permission("sendToGroup", "c1", target_name="secret")
    client.revoke_permission("joinLeaveGroup", "c1", target_name="secret")
    client.grant_permission("sendToGroup", "c1")
    client.grant_permission("joinLeaveGroup", "c1", target_name="secret")
    assert client.has_permission("sendToGroup", "c1", target_name="secret") is True
    assert client.has_permission("joinLeaveGroup", "c1", target_name="secret") is True


def test_grant_to_a_missing_connection_is_not_found(server, hub, client) -> None:
    with pytest.raises(ResourceNotFoundError):
        client.grant_permission("sendToGroup", "ghost", target_name="room1")


def test_has_permission_of_a_missing_connection_is_false(server, hub, client) -> None:
    assert client.has_permission("sendToGroup", "ghost") is False


def test_unknown_permission_is_a_400(server, hub, client) -> None:
    server.connect(hub, "c1")
    with pytest.raises(HttpResponseError) as raised:
        client.grant_permission("admin", "c1")
    assert raised.value.status_code == 400
    assert "use sendToGroup or joinLeaveGroup" in str(raised.value)


# --- list connections ------------------------------------------------------------------------------------


def test_list_connections_follows_next_links_across_pages(server, hub, client, caplog) -> None:
    for n in range(5):
        server.connect(hub, f"c{n}", f"user{n}", "room")
    server.connect(hub, "outsider", "x")
    with caplog.at_level(logging.INFO, logger="wps_emulator.rest"):
        members = list(client.list_connections(group="room", maxpagesize=2))
    assert [(m.connection_id, m.user_id) for m in members] == [(f"c{n}", f"user{n}") for n in range(5)]
    pages = [r for r in caplog.records if "GET" in r.getMessage() and "/connections" in r.getMessage()]
    assert len(pages) == 3


def test_list_connections_stops_at_top(server, hub, client) -> None:
    for n in range(5):
        server.connect(hub, f"c{n}", None, "room")
    members = list(client.list_connections(group="room", top=3, maxpagesize=2))
    assert [m.connection_id for m in members] == ["c0", "c1", "c2"]


def test_list_connections_of_an_empty_group_is_empty(server, hub, client) -> None:
    assert list(client.list_connections(group="nobody-here")) == []


def test_list_connections_body_shape(server, hub) -> None:
    server.connect(hub, "c1", "alice", "room")
    server.connect(hub, "c2", None, "room")
    server.connect(hub, "c3", None, "room")
    reply = call(
        server, "GET", f"/api/hubs/{hub}/groups/room/connections?maxpagesize=2&api-version=2024-12-01"
    )
    assert reply.status == 200
    body = reply.json()
    assert body["value"] == [{"connectionId": "c1", "userId": "alice"}, {"connectionId": "c2"}]
    assert body["nextLink"].startswith(f"/api/hubs/{hub}/groups/room/connections?")
    last = call(server, "GET", body["nextLink"]).json()
    assert last == {"value": [{"connectionId": "c3"}]}


def test_list_connections_refuses_a_forged_continuation_token(server, hub) -> None:
    reply = call(server, "GET", f"/api/hubs/{hub}/groups/room/connections?continuationToken=bogus!")
    assert reply.status == 400
    assert reply.json()["target"] == "continuationToken"


def test_list_connections_refuses_a_page_size_over_200(server, hub) -> None:
    reply = call(server, "GET", f"/api/hubs/{hub}/groups/room/connections?maxpagesize=201")
    assert reply.status == 400
    assert "between 1 and 200" in reply.json()["message"]


# --- client tokens ---------------------------------------------------------------------------------------


def test_generate_token_signs_the_claims_asked_for(server, hub) -> None:
    path = (
        f"/api/hubs/{hub}/:generateToken?userId=alice&role=webpubsub.joinLeaveGroup.room1"
        "&role=webpubsub.sendToGroup.room1&minutesToExpire=5&api-version=2024-12-01&group=room1"
        "&clientType=Default"
    )
    reply = call(server, "POST", path)
    assert reply.status == 200
    token = reply.json()["token"]
    claims = jwt.decode(
        token, ACCESS_KEY, algorithms=["HS256"], audience=f"{server.endpoint}/client/hubs/{hub}"
    )
    assert claims["sub"] == "alice"
    assert claims["role"] == ["webpubsub.joinLeaveGroup.room1", "webpubsub.sendToGroup.room1"]
    assert claims["webpubsub.group"] == ["room1"]
    assert claims["exp"] - claims["iat"] == 300


def test_generate_token_defaults_to_an_anonymous_hour(server, hub) -> None:
    token = call(server, "POST", f"/api/hubs/{hub}/:generateToken").json()["token"]
    claims = jwt.decode(
        token, ACCESS_KEY, algorithms=["HS256"], audience=f"{server.endpoint}/client/hubs/{hub}"
    )
    assert set(claims) == {"aud", "iat", "exp"}
    assert claims["exp"] - claims["iat"] == 3600


def test_generate_token_for_mqtt_clients_uses_the_mqtt_path(server, hub) -> None:
    token = call(server, "POST", f"/api/hubs/{hub}/:generateToken?clientType=MQTT").json()["token"]
    claims = jwt.decode(token, ACCESS_KEY, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["aud"] == f"{server.endpoint}/clients/mqtt/hubs/{hub}"


def test_generate_token_refuses_an_unknown_client_type(server, hub) -> None:
    reply = call(server, "POST", f"/api/hubs/{hub}/:generateToken?clientType=Carrier")
    assert reply.status == 400
    assert reply.json()["target"] == "clientType"


def test_generate_token_refuses_zero_minutes(server, hub) -> None:
    reply = call(server, "POST", f"/api/hubs/{hub}/:generateToken?minutesToExpire=0")
    assert reply.status == 400


class EmulatorKeyCredential:
    """A TokenCredential that, like an Entra credential, hands the SDK a ready bearer token.

    The emulator only trusts its access key, so the token is a key-signed JWT whose audience is the
    :generateToken URL (the emulator ignores the query in audiences).
    """

    def __init__(self, audience: str) -> None:
        self.audience = audience

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        expires = int(time.time()) + 60
        token = jwt.encode({"aud": self.audience, "exp": expires}, ACCESS_KEY, algorithm="HS256")
        return AccessToken(token, expires)


def test_sdk_get_client_access_token_over_rest(server, hub) -> None:
    credential = EmulatorKeyCredential(f"{server.endpoint}/api/hubs/{hub}/:generateToken")
    with WebPubSubServiceClient(server.endpoint, hub, credential, retry_total=0) as sdk:
        # The bearer policy refuses plain http unless told otherwise; the emulator is local.
        access = sdk.get_client_access_token(user_id="bob", groups=["g1"], enforce_https=False)
    base = f"ws://127.0.0.1:{server.port}/client/hubs/{hub}"
    assert access["baseUrl"] == base
    assert access["url"] == f"{base}?access_token={access['token']}"
    claims = jwt.decode(
        access["token"], ACCESS_KEY, algorithms=["HS256"], audience=f"{server.endpoint}/client/hubs/{hub}"
    )
    assert (claims["sub"], claims["webpubsub.group"]) == ("bob", ["g1"])


# --- authentication --------------------------------------------------------------------------------------


def test_wrong_access_key_is_refused(server, hub) -> None:
    cs = web_pubsub_connection_string(server.endpoint, "Z" * 44)
    refused = pytest.raises(ClientAuthenticationError, match="not signed with this emulator's access key")
    with WebPubSubServiceClient.from_connection_string(cs, hub=hub, retry_total=0) as wrong, refused:
        wrong.send_to_all({"m": 1})


def test_wrong_access_key_is_refused_on_head_too(server, hub) -> None:
    cs = web_pubsub_connection_string(server.endpoint, "Z" * 44)
    refused = pytest.raises(ClientAuthenticationError)
    with WebPubSubServiceClient.from_connection_string(cs, hub=hub, retry_total=0) as wrong, refused:
        wrong.group_exists("g")


def test_missing_authorization_is_a_401(server, hub) -> None:
    reply = call(
        server,
        "POST",
        f"/api/hubs/{hub}/:send",
        b"{}",
        content_type="application/json",
        authorization="Basic abc",
    )
    assert reply.status == 401
    assert "missing 'Authorization: Bearer <token>'" in reply.json()["message"]


def test_expired_token_is_a_401(server, hub) -> None:
    url = f"{server.endpoint}/api/hubs/{hub}/:send"
    token = sdk_token(url, lifetime=-600)
    reply = call(
        server, "POST", f"/api/hubs/{hub}/:send", b"{}", content_type="application/json", token=token
    )
    assert reply.status == 401
    assert "expired" in reply.json()["message"]


def test_token_for_another_path_is_a_401(server, hub) -> None:
    channel = server.connect(hub, "c1")
    token = sdk_token(f"{server.endpoint}/api/hubs/{hub}/users/u1/:send")
    reply = call(
        server, "POST", f"/api/hubs/{hub}/:send", b"{}", content_type="application/json", token=token
    )
    assert reply.status == 401
    assert "does not match the request URL" in reply.json()["message"]
    assert channel.messages == []


def test_token_for_another_host_is_a_401(server, hub) -> None:
    token = sdk_token(f"http://example.com:{server.port}/api/hubs/{hub}/:send")
    reply = call(
        server, "POST", f"/api/hubs/{hub}/:send", b"{}", content_type="application/json", token=token
    )
    assert reply.status == 401


def test_audience_without_the_query_is_accepted(server, hub) -> None:
    token = sdk_token(f"{server.endpoint}/api/hubs/{hub}/groups/g/connections")
    reply = call(server, "GET", f"/api/hubs/{hub}/groups/g/connections?top=5", token=token)
    assert reply.status == 200


def test_audience_is_accepted_url_decoded(server, hub) -> None:
    token = sdk_token(f"{server.endpoint}/api/hubs/{hub}/groups/room 1/ä/:send")
    path = f"/api/hubs/{hub}/groups/room%201%2F%C3%A4/:send"
    reply = call(server, "POST", path, b"{}", content_type="application/json", token=token)
    assert reply.status == 202


def test_an_entra_token_without_a_configured_tenant_is_a_401_saying_how_to_accept_it(server, hub) -> None:
    key = SigningKey.generate()
    claims = {"aud": "https://webpubsub.azure.com", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    reply = call(
        server, "POST", f"/api/hubs/{hub}/:send", b"{}", content_type="application/json", token=token
    )
    assert reply.status == 401
    assert "start it with --entra-tenant <tenant id>" in reply.json()["message"]


def test_token_without_exp_is_a_401(server, hub) -> None:
    token = jwt.encode({"aud": f"{server.endpoint}/api/hubs/{hub}/users/u1"}, ACCESS_KEY, algorithm="HS256")
    reply = call(server, "HEAD", f"/api/hubs/{hub}/users/u1", token=token)
    assert reply.status == 401


# --- validation --------------------------------------------------------------------------------------------


def test_invalid_hub_name_is_a_400(server) -> None:
    reply = call(server, "POST", "/api/hubs/1chat/:send", b"{}", content_type="application/json")
    assert reply.status == 400
    assert reply.json()["target"] == "hub"


def test_whitespace_group_name_is_a_400(server, hub) -> None:
    reply = call(
        server, "POST", f"/api/hubs/{hub}/groups/%20%20/:send", b"{}", content_type="application/json"
    )
    assert reply.status == 400
    assert reply.json()["target"] == "group"


def test_group_name_over_1024_characters_is_a_400(server, hub) -> None:
    reply = call(server, "HEAD", f"/api/hubs/{hub}/groups/{'g' * 1025}")
    assert reply.status == 400


@pytest.mark.parametrize("version", ["2021-10-01", "2024-01-01", "2021-05-01-preview", "2024-12-01"])
def test_known_api_versions_are_accepted(server, hub, version: str) -> None:
    assert call(server, "HEAD", f"/api/hubs/{hub}/users/u1?api-version={version}").status == 404


def test_missing_api_version_means_latest(server, hub) -> None:
    assert call(server, "HEAD", f"/api/hubs/{hub}/users/u1").status == 404


@pytest.mark.parametrize("version", ["2099-01-01", "latest"])
def test_unsupported_api_version_is_a_400(server, hub, version: str) -> None:
    reply = call(
        server, "POST", f"/api/hubs/{hub}/:send?api-version={version}", b"{}", content_type="application/json"
    )
    assert reply.status == 400
    assert "versions up to 2024-12-01" in reply.json()["message"]


def test_unknown_operation_is_a_json_404(server, hub) -> None:
    reply = call(server, "POST", f"/api/hubs/{hub}/:explode")
    assert reply.status == 404
    assert reply.json()["message"] == f"no REST operation POST /api/hubs/{hub}/:explode in this emulator"


def test_each_rest_call_is_logged_on_one_line(server, hub, client, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="wps_emulator.rest"):
        client.send_to_all({"m": 1})
        client.group_exists("g")
    lines = [r.getMessage() for r in caplog.records if r.name == "wps_emulator.rest"]
    assert len(lines) == 2
    assert lines[0].startswith(f"REST POST /api/hubs/{hub}/:send -> 202")
    assert lines[1].startswith(f"REST HEAD /api/hubs/{hub}/groups/g -> 404")


def test_the_bearer_token_is_never_logged(server, hub, caplog) -> None:
    token = sdk_token(f"{server.endpoint}/api/hubs/{hub}/:generateToken")
    with caplog.at_level(logging.DEBUG, logger="wps_emulator"):
        reply = call(server, "POST", f"/api/hubs/{hub}/:generateToken?userId=u", token=token)
    issued = reply.json()["token"]
    assert all(token not in r.getMessage() and issued not in r.getMessage() for r in caplog.records)


# --- the aio client ---------------------------------------------------------------------------------------


async def test_aio_client_sends_checks_and_lists(server, hub) -> None:
    channel = server.connect(hub, "c1", "alice", "room")
    for n in range(2, 5):
        server.connect(hub, f"c{n}", None, "room")
    cs = web_pubsub_connection_string(server.endpoint)
    async with AioWebPubSubServiceClient.from_connection_string(cs, hub=hub, retry_total=0) as sdk:
        await sdk.send_to_group("room", b"\x01\x02", content_type="application/octet-stream", excluded=["c2"])
        assert await sdk.user_exists("alice") is True
        assert await sdk.group_exists("other") is False
        members = [m async for m in sdk.list_connections(group="room", maxpagesize=1)]
    assert received(channel) == [("binary", b"\x01\x02")]
    assert [m.connection_id for m in members] == ["c1", "c2", "c3", "c4"]


async def test_aio_client_bad_filter_is_a_400(server, hub) -> None:
    cs = web_pubsub_connection_string(server.endpoint)
    async with AioWebPubSubServiceClient.from_connection_string(cs, hub=hub, retry_total=0) as sdk:
        with pytest.raises(HttpResponseError) as raised:
            await sdk.send_to_all({"m": 1}, filter="userId eq 'a' AND true")
    assert raised.value.status_code == 400
    assert "write 'and', not 'AND'" in str(raised.value)
