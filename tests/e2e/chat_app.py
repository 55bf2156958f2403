"""The function app's HTTP routes as the e2e tests use them, and an inbox for client callbacks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.messaging.webpubsubclient.aio import WebPubSubClient, WebPubSubClientCredential
from azure.messaging.webpubsubclient.models import WebPubSubProtocolType

from tests.constants import ACCESS_KEY, HUB

Frame = dict[str, Any]


def unique_user(prefix: str) -> str:
    """A user id no other test uses: the stack and its stored history are shared by the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ChatApp:
    """The function app's public routes (/api/negotiate, /api/messages, /api/presence, /api/index) and the
    host's admin route that runs a timer function now."""

    base_url: str

    @property
    def page_url(self) -> str:
        return f"{self.base_url}/api/index"

    def negotiate(self, user_id: str) -> str:
        """The client access URL for `user_id`."""
        query = urllib.parse.urlencode({"userId": user_id})
        return str(self._get_json(f"/api/negotiate?{query}")["url"])

    def history(self, user_id: str, limit: int = 100) -> list[Frame]:
        """The newest `limit` messages, newest first, as `user_id` asks for them."""
        query = urllib.parse.urlencode({"userId": user_id, "limit": limit})
        return list(self._get_json(f"/api/messages?{query}")["messages"])

    def messages_after(self, user_id: str, after: str, limit: int = 200) -> list[Frame]:
        """Every message stored after the message `after`, oldest first, following `next` to the end."""
        messages: list[Frame] = []
        following: str | None = after
        while following is not None:
            query = urllib.parse.urlencode({"userId": user_id, "after": following, "limit": limit})
            page = self._get_json(f"/api/messages?{query}")
            messages += page["messages"]
            following = page["next"]
        return messages

    def online(self, user_id: str) -> dict[str, int]:
        """/api/presence as `user_id` asks for it: user id -> number of live connections."""
        query = urllib.parse.urlencode({"userId": user_id})
        users = self._get_json(f"/api/presence?{query}")["users"]
        return {user["userId"]: user["connections"] for user in users}

    def run_timer(self, name: str) -> None:
        """Run a timer function now through the host's admin route (202; it runs in the background)."""
        request = urllib.request.Request(  # noqa: S310 - local
            f"{self.base_url}/admin/functions/{name}",
            data=b'{"input": ""}',
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            assert response.status == 202, f"POST /admin/functions/{name} answered {response.status}"

    async def negotiate_async(self, user_id: str) -> str:
        return await asyncio.to_thread(self.negotiate, user_id)

    async def history_async(self, user_id: str, limit: int = 100) -> list[Frame]:
        return await asyncio.to_thread(self.history, user_id, limit)

    async def messages_after_async(self, user_id: str, after: str, limit: int = 200) -> list[Frame]:
        return await asyncio.to_thread(self.messages_after, user_id, after, limit)

    async def online_async(self, user_id: str) -> dict[str, int]:
        return await asyncio.to_thread(self.online, user_id)

    def _get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.base_url + path, timeout=10) as response:  # noqa: S310 - local
            return json.load(response)


@dataclass(frozen=True)
class Webhook:
    """The app's /api/eventhandler, called as the service calls it: signed with the local access key.

    For what the emulator cannot be made to do on purpose, such as events of a connection it never had.
    """

    url: str
    service_endpoint: str  # the service the events claim to come from (its host is the webhook origin)

    def system_event(self, event: str, connection_id: str, user_id: str, body: dict[str, Any]) -> int:
        """Send `connected` or `disconnected` of `connection_id`; the status the app answered."""
        signature = hmac.new(ACCESS_KEY.encode(), connection_id.encode(), hashlib.sha256).hexdigest()
        headers = {
            "WebHook-Request-Origin": urllib.parse.urlsplit(self.service_endpoint).netloc,
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
            "ce-type": f"azure.webpubsub.sys.{event}",
            "ce-source": f"/hubs/{HUB}/client/{connection_id}",
            "ce-id": str(uuid.uuid4()),
            "ce-time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ce-hub": HUB,
            "ce-connectionId": connection_id,
            "ce-userId": user_id,
            "ce-eventName": event,
            "ce-signature": f"sha256={signature}",
        }
        request = urllib.request.Request(  # noqa: S310 - local
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            return int(response.status)


def python_client(
    app: ChatApp,
    user_id: str,
    protocol: WebPubSubProtocolType,
    *,
    before_negotiate: Callable[[], Awaitable[None]] | None = None,
    **options: Any,
) -> WebPubSubClient:
    """Microsoft's async Python client, negotiating through the app as `user_id` each time it connects.

    `before_negotiate` runs before each negotiation (a test can hold a reconnection with it); `options`
    go to the client. Timeouts shorter than the SDK's 30 s defaults keep a stuck test from stalling the
    session.
    """

    async def client_access_url() -> str:
        if before_negotiate is not None:
            await before_negotiate()
        return await app.negotiate_async(user_id)

    return WebPubSubClient(
        WebPubSubClientCredential(client_access_url),
        protocol_type=protocol,
        **({"start_timeout": 10, "ack_timeout": 10} | options),
    )


def is_presence(frame: Frame, event: str, user_id: str, user: str | None = None) -> bool:
    """A presence notice of `user_id`; with `user`, one that says that ("online", "offline", "unchanged")."""
    return (
        isinstance(frame, dict)
        and frame.get("type") == "presence"
        and frame.get("event") == event
        and frame.get("userId") == user_id
        and (user is None or frame.get("user") == user)
    )


def is_message(frame: Frame, user_id: str, text: str) -> bool:
    return (
        isinstance(frame, dict)
        and frame.get("type") == "message"
        and frame.get("userId") == user_id
        and frame.get("data") == text
    )


def is_send_reply(frame: Frame) -> bool:
    """The app's answer to the sender of a `message` event: the stored id, not a broadcast."""
    return isinstance(frame, dict) and "type" not in frame and isinstance(frame.get("id"), str)


class Inbox:
    """Collects the JSON data of server messages one client receives; waits for one that matches."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self._changed = asyncio.Condition()

    async def receive(self, args: Any) -> None:
        """A SERVER_MESSAGE callback for the Python client."""
        async with self._changed:
            self.frames.append(args.data)
            self._changed.notify_all()

    async def wait_until(self, holds: Callable[[list[Frame]], bool], within: float = 15.0) -> None:
        """Wait up to `within` seconds until what arrived so far satisfies `holds`."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: holds(self.frames)), within)

    async def wait_for(self, matches: Callable[[Frame], bool], within: float = 15.0) -> Frame:
        """The first frame that `matches`, waiting up to `within` seconds for it to arrive."""
        await self.wait_until(lambda frames: any(matches(frame) for frame in frames), within)
        return next(frame for frame in self.frames if matches(frame))
