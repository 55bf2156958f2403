"""What the service does with client traffic: upstream events, group operations, acks, replies."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import WSCloseCode

from . import jsonprotocol as jp
from .config import EmulatorConfig, HubSettings
from .connection import ClientConnection, ClientKind
from .hub import Connection, HubRegistry
from .messages import (
    CONTENT_TYPES,
    SUPPORTED_CONTENT_TYPES,
    ServerMessage,
    content_type_for,
    data_type_of,
    media_type,
)
from .upstream import EventKind, Upstream, UpstreamError, UpstreamEvent, UpstreamResponse

log = logging.getLogger(__name__)

SYSTEM_EVENT_CONTENT_TYPE = "application/json; charset=utf-8"


class ReplyError(Exception):
    """An upstream reply that cannot be delivered (unsupported content type, invalid JSON)."""


def reply_message(response: UpstreamResponse) -> ServerMessage | None:
    """The message a user-event reply sends to the caller; None for an empty reply."""
    if not response.body:
        return None
    # A reply without a Content-Type is binary, as in the service.
    data_type = data_type_of(media_type(response.content_type or CONTENT_TYPES["binary"]))
    if data_type == "json":
        try:
            value = json.loads(response.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReplyError(f"reply declared application/json but is not JSON: {exc}") from exc
        return ServerMessage(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(), "json")
    if data_type == "text":
        try:
            response.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReplyError("reply declared text/plain but is not UTF-8") from exc
        return ServerMessage(response.body, "text")
    if data_type == "binary":
        return ServerMessage(response.body, "binary")
    raise ReplyError(f"reply Content-Type {response.content_type!r} is not {SUPPORTED_CONTENT_TYPES}")


class Service:
    """The emulated service: hub state, configured event handlers and the upstream client."""

    def __init__(self, config: EmulatorConfig, registry: HubRegistry, upstream: Upstream) -> None:
        self.config = config
        self.registry = registry
        self.upstream = upstream
        self._background: set[asyncio.Task[Any]] = set()

    # --- upstream ------------------------------------------------------------------------------
    def settings(self, hub: str) -> HubSettings:
        return self.config.hub_settings(hub)

    def event_for(
        self, conn: ClientConnection, kind: EventKind, name: str, body: bytes, content_type: str
    ) -> UpstreamEvent | None:
        """The upstream request for an event of `conn`, or None when no handler takes the event."""
        return self.build_event(
            conn.info,
            kind,
            name,
            body,
            content_type,
            state=conn.connection_state,
            event_id=conn.next_event_id,
        )

    def build_event(
        self,
        info: Connection,
        kind: EventKind,
        name: str,
        body: bytes,
        content_type: str,
        *,
        state: str | None,
        event_id: Callable[[], int],
    ) -> UpstreamEvent | None:
        """The upstream request for an event, or None when no handler of the hub takes it."""
        handler = self.settings(info.hub).handler_for(name, system=kind == "sys")
        if handler is None:
            return None
        return UpstreamEvent(
            url=handler.url(info.hub, name),
            validation_url=handler.url(info.hub, "validate"),
            kind=kind,
            name=name,
            hub=info.hub,
            connection_id=info.connection_id,
            event_id=event_id(),
            body=body,
            content_type=content_type,
            user_id=info.user_id,
            subprotocol=info.subprotocol,
            connection_state=state,
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run in the background, keeping a reference until done."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait a little for background events (at shutdown)."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=5.0)

    def notify(self, conn: ClientConnection, name: str, body: dict[str, Any]) -> None:
        """Fire-and-forget system event (connected, disconnected): failures are only logged."""
        event = self.event_for(conn, "sys", name, json.dumps(body).encode(), SYSTEM_EVENT_CONTENT_TYPE)
        if event is None:
            return

        async def send() -> None:
            try:
                response = await self.upstream.send(event)
            except UpstreamError as exc:
                log.warning("%s event of %s failed: %s", name, conn.label, exc)
                return
            if not response.ok:
                log.warning("%s event of %s answered %d", name, conn.label, response.status)

        self.spawn(send())

    async def call(self, conn: ClientConnection, event: UpstreamEvent) -> UpstreamResponse:
        """Blocking event: send it and apply a returned `ce-connectionState`."""
        response = await self.upstream.send(event)
        if response.ok and response.connection_state is not None:
            conn.connection_state = response.connection_state
        return response

    # --- lifecycle -----------------------------------------------------------------------------
    def on_connected(self, conn: ClientConnection) -> None:
        log.info(
            "connection %s connected user=%s protocol=%s groups=%s",
            conn.label,
            conn.info.user_id,
            conn.info.subprotocol or "none",
            sorted(conn.info.groups),
        )
        self.notify(conn, "connected", {})

    async def finish(self, conn: ClientConnection, reason: str) -> None:
        """A connection has ended for good: leave the hub, then the `disconnected` event."""
        hub = self.registry.hub(conn.info.hub)
        if hub.get(conn.connection_id) is conn.info:
            hub.remove(conn.connection_id)
        log.info("connection %s disconnected reason=%r", conn.label, reason)
        self.notify(conn, "disconnected", {"reason": reason})

    # --- simple WebSocket clients ----------------------------------------------------------------
    async def handle_simple_frame(self, conn: ClientConnection, data: bytes, binary: bool) -> None:
        """Every frame of a simple client is a `message` user event; the reply goes back as a frame."""
        content_type = content_type_for("binary" if binary else "text")
        event = self.event_for(conn, "user", "message", data, content_type)
        if event is None:
            # Like the service: a simple client's message that no handler takes ends the connection.
            await conn.close_with(WSCloseCode.POLICY_VIOLATION, "no event handler takes the message event")
            return
        try:
            response = await self.call(conn, event)
            if not response.ok:
                raise UpstreamError(f"event handler answered {response.status}")
            reply = reply_message(response)
        except (UpstreamError, ReplyError) as exc:
            log.warning("message event of %s failed: %s", conn.label, exc)
            await conn.close_with(WSCloseCode.INTERNAL_ERROR, "event handler failed")
            return
        if reply is not None:
            await conn.deliver(reply)

    # --- JSON clients --------------------------------------------------------------------------
    async def handle_json_frame(self, conn: ClientConnection, text: str) -> None:
        """One text frame of a JSON-protocol client."""
        try:
            request = jp.parse_request(text)
        except jp.InvalidFrame as exc:
            await conn.close_with(WSCloseCode.INVALID_TEXT, str(exc))
            return
        except jp.BadRequest as exc:
            log.info("bad request from %s: %s", conn.label, exc)
            if exc.ack_id is not None:
                await conn.send_text(jp.ack(exc.ack_id, "BadRequest", str(exc)))
            return
        if isinstance(request, jp.SequenceAck):
            if conn.kind is ClientKind.RELIABLE:
                conn.acknowledge(request.sequence_id)
            return
        if isinstance(request, jp.Ping):
            await conn.send_text(jp.PONG)
            return
        ack_id = request.ack_id
        if ack_id is not None and ack_id in conn.acks:
            await conn.send_text(
                jp.ack(ack_id, "Duplicate", f"Message with ack-id: {ack_id} has been processed")
            )
            return
        error = await self._execute(conn, request)
        if ack_id is None:
            return
        if error is None:
            conn.acks.add(ack_id)
            await conn.send_text(jp.ack(ack_id))
        else:
            await conn.send_text(jp.ack(ack_id, *error))

    async def _execute(self, conn: ClientConnection, request: jp.ClientRequest) -> tuple[str, str] | None:
        """Carry out a request; returns (error name, message) on failure."""
        hub = self.registry.hub(conn.info.hub)
        info = conn.info
        if isinstance(request, jp.JoinGroup | jp.LeaveGroup):
            if not info.has_permission("joinLeaveGroup", request.group):
                return "Forbidden", f"no permission to join or leave group {request.group!r}"
            if isinstance(request, jp.JoinGroup):
                hub.join(info.connection_id, request.group)
            else:
                hub.leave(info.connection_id, request.group)
            return None
        if isinstance(request, jp.SendToGroup):
            if not info.has_permission("sendToGroup", request.group):
                return "Forbidden", f"no permission to send to group {request.group!r}"
            message = ServerMessage(
                request.data,
                request.data_type,
                source="group",
                group=request.group,
                from_user_id=info.user_id,
            )
            excluded = (info.connection_id,) if request.no_echo else ()
            await hub.deliver(hub.select(hub.in_group(request.group), excluded=excluded), message)
            return None
        if isinstance(request, jp.UserEvent):
            return await self._user_event(conn, request)
        return None  # pragma: no cover - sequenceAck and ping are handled before

    async def _user_event(self, conn: ClientConnection, request: jp.UserEvent) -> tuple[str, str] | None:
        event = self.event_for(conn, "user", request.event, request.data, content_type_for(request.data_type))
        if event is None:
            log.info("event %r of %s: no event handler takes it", request.event, conn.label)
            return None
        try:
            response = await self.call(conn, event)
        except UpstreamError as exc:
            log.warning("event %r of %s failed: %s", request.event, conn.label, exc)
            return "InternalServerError", "the event handler could not be reached"
        if not response.ok:
            return "InternalServerError", f"the event handler answered {response.status}"
        try:
            reply = reply_message(response)
        except ReplyError as exc:
            log.warning("event %r of %s: %s", request.event, conn.label, exc)
            return "InternalServerError", str(exc)
        if reply is not None:
            await conn.deliver(reply)  # before the ack, as the service does
        return None
