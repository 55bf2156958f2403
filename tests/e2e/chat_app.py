"""The function app's HTTP routes as the e2e tests use them, and an inbox for client callbacks."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.messaging.webpubsubclient.aio import WebPubSubClient, WebPubSubClientCredential
from azure.messaging.webpubsubclient.models import WebPubSubProtocolType

Frame = dict[str, Any]


def unique_user(prefix: str) -> str:
    """A user id no other test uses: the stack and its stored history are shared by the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ChatApp:
    """The function app's public routes (/api/negotiate, /api/messages, /api/index)."""

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

    async def negotiate_async(self, user_id: str) -> str:
        return await asyncio.to_thread(self.negotiate, user_id)

    async def history_async(self, user_id: str, limit: int = 100) -> list[Frame]:
        return await asyncio.to_thread(self.history, user_id, limit)

    def _get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.base_url + path, timeout=10) as response:  # noqa: S310 - local
            return json.load(response)


def python_client(app: ChatApp, user_id: str, protocol: WebPubSubProtocolType) -> WebPubSubClient:
    """Microsoft's async Python client, negotiating through the app as `user_id`.

    Timeouts shorter than the SDK's 30 s defaults keep a stuck test from stalling the session.
    """

    async def client_access_url() -> str:
        return await app.negotiate_async(user_id)

    return WebPubSubClient(
        WebPubSubClientCredential(client_access_url), protocol_type=protocol, start_timeout=10, ack_timeout=10
    )


def is_presence(frame: Frame, event: str, user_id: str) -> bool:
    return (
        isinstance(frame, dict)
        and frame.get("type") == "presence"
        and frame.get("event") == event
        and frame.get("userId") == user_id
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
