"""What the service does with client traffic: upstream events, group operations, acks, replies."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import WSCloseCode

from . import jsonprotocol as jp
from . import jsontext
from .config import EmulatorConfig
from .hosts import HostPolicy
from .hub import HubRegistry
from .messages import (
    CONTENT_TYPES,
    SUPPORTED_CONTENT_TYPES,
    ServerMessage,
    content_type_for,
    data_type_of,
    media_type,
)
from .session import ClientKind, Session
from .upstream import EventKind, EventOrigin, Upstream, UpstreamError, UpstreamEvent, UpstreamResponse

log = logging.getLogger(__name__)

SYSTEM_EVENT_CONTENT_TYPE = f"{CONTENT_TYPES['json']}; charset=utf-8"  # connect, connected, disconnected


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
            jsontext.check(response.body.decode("utf-8"))
        except (jsontext.JsonTextError, UnicodeDecodeError) as exc:
            raise ReplyError(f"reply declared application/json but is not JSON: {exc}") from exc
        return ServerMessage(response.body, "json")  # passed on exactly as the handler wrote it
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

    def __init__(
        self, config: EmulatorConfig, registry: HubRegistry, upstream: Upstream, hosts: HostPolicy
    ) -> None:
        self.config = config
        self.registry = registry
        self.upstream = upstream
        self.hosts = hosts
        self._background: set[asyncio.Task[Any]] = set()

    # --- upstream ------------------------------------------------------------------------------
    def upstream_event(
        self, origin: EventOrigin, kind: EventKind, name: str, body: bytes, content_type: str
    ) -> UpstreamEvent | None:
        """The upstream request for an event of `origin`, or None when no handler of its hub takes it."""
        handler = self.config.hub_settings(origin.hub).handler_for(name, system=kind == "sys")
        if handler is None:
            return None
        return UpstreamEvent(
            url=handler.url(origin.hub, name),
            validation_url=handler.url(origin.hub, "validate"),
            kind=kind,
            name=name,
            hub=origin.hub,
            connection_id=origin.connection_id,
            event_id=origin.next_event_id(),
            body=body,
            content_type=content_type,
            user_id=origin.user_id,
            subprotocol=origin.subprotocol,
            connection_state=origin.connection_state,
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

    def send_nonblocking_event(self, session: Session, name: str, body: dict[str, Any]) -> None:
        """A system event the service does not wait for (connected, disconnected): failures are logged."""
        event = self.upstream_event(
            session, "sys", name, json.dumps(body).encode(), SYSTEM_EVENT_CONTENT_TYPE
        )
        if event is None:
            return

        async def send() -> None:
            try:
                response = await self.upstream.send(event)
            except UpstreamError as exc:
                log.warning("%s event of %s failed: %s", name, session.label, exc)
                return
            if not response.ok:
                log.warning("%s event of %s answered %d", name, session.label, response.status)

        self.spawn(send())

    async def send_blocking_event(self, session: Session, event: UpstreamEvent) -> UpstreamResponse:
        """Send an event and wait for its answer; a returned `ce-connectionState` replaces the state."""
        response = await self.upstream.send(event)
        if response.ok and response.connection_state is not None:
            session.connection_state = response.connection_state
        return response

    # --- lifecycle -----------------------------------------------------------------------------
    def on_connected(self, session: Session) -> None:
        connection = session.connection
        log.info(
            "connection %s connected user=%s protocol=%s groups=%s",
            session.label,
            connection.user_id,
            connection.subprotocol or "none",
            sorted(connection.groups),
        )
        self.send_nonblocking_event(session, "connected", {})

    async def finish(self, session: Session, reason: str) -> None:
        """A connection has ended for good: leave the hub, then the `disconnected` event."""
        hub = self.registry.hub(session.hub)
        if hub.get(session.connection_id) is session.connection:
            hub.remove(session.connection_id)
        log.info("connection %s disconnected reason=%r", session.label, reason)
        self.send_nonblocking_event(session, "disconnected", {"reason": reason})

    # --- simple WebSocket clients ----------------------------------------------------------------
    async def handle_simple_frame(self, session: Session, data: bytes, binary: bool) -> None:
        """Every frame of a simple client is a `message` user event; the reply goes back as a frame."""
        content_type = content_type_for("binary" if binary else "text")
        event = self.upstream_event(session, "user", "message", data, content_type)
        if event is None:
            # Like the service: a simple client's message that no handler takes ends the connection.
            await session.close_with(WSCloseCode.POLICY_VIOLATION, "no event handler takes the message event")
            return
        try:
            response = await self.send_blocking_event(session, event)
            if not response.ok:
                raise UpstreamError(f"event handler answered {response.status}")
            reply = reply_message(response)
        except (UpstreamError, ReplyError) as exc:
            log.warning("message event of %s failed: %s", session.label, exc)
            await session.close_with(WSCloseCode.INTERNAL_ERROR, "event handler failed")
            return
        if reply is not None:
            await session.deliver(reply)

    # --- JSON clients --------------------------------------------------------------------------
    async def handle_json_frame(self, session: Session, text: str) -> None:
        """One text frame of a JSON-protocol client."""
        try:
            request = jp.parse_request(text)
        except jp.InvalidFrame as exc:
            await session.close_with(WSCloseCode.INVALID_TEXT, str(exc))
            return
        except jp.BadRequest as exc:
            log.info("bad request from %s: %s", session.label, exc)
            if exc.ack_id is not None:
                session.write_text(jp.ack(exc.ack_id, "BadRequest", str(exc)))
            return
        if isinstance(request, jp.SequenceAck):
            if session.kind is ClientKind.RELIABLE:
                session.acknowledge(request.sequence_id)
        elif isinstance(request, jp.Ping):
            session.write_text(jp.PONG)
        else:
            await self._acknowledged(session, request)

    async def _acknowledged(self, session: Session, request: jp.AckableRequest) -> None:
        """Carry out a request that may carry an ackId, and answer that ackId."""
        ack_id = request.ack_id
        if ack_id is not None and ack_id in session.acks:
            session.write_text(
                jp.ack(ack_id, "Duplicate", f"Message with ack-id: {ack_id} has been processed")
            )
            return
        error = await self._execute(session, request)
        if ack_id is None:
            return
        if error is None:
            session.acks.add(ack_id)
            session.write_text(jp.ack(ack_id))
        else:
            session.write_text(jp.ack(ack_id, *error))

    async def _execute(self, session: Session, request: jp.AckableRequest) -> tuple[str, str] | None:
        """Carry out a request; returns (error name, message) on failure."""
        if isinstance(request, jp.JoinGroup | jp.LeaveGroup):
            return self._join_or_leave(session, request)
        if isinstance(request, jp.SendToGroup):
            return await self._send_to_group(session, request)
        return await self._user_event(session, request)

    def _join_or_leave(
        self, session: Session, request: jp.JoinGroup | jp.LeaveGroup
    ) -> tuple[str, str] | None:
        connection = session.connection
        if not connection.has_permission("joinLeaveGroup", request.group):
            return "Forbidden", f"no permission to join or leave group {request.group!r}"
        hub = self.registry.hub(session.hub)
        if isinstance(request, jp.JoinGroup):
            hub.join(connection.connection_id, request.group)
        else:
            hub.leave(connection.connection_id, request.group)
        return None

    async def _send_to_group(self, session: Session, request: jp.SendToGroup) -> tuple[str, str] | None:
        connection = session.connection
        if not connection.has_permission("sendToGroup", request.group):
            return "Forbidden", f"no permission to send to group {request.group!r}"
        message = ServerMessage(
            request.data,
            request.data_type,
            source="group",
            group=request.group,
            from_user_id=connection.user_id,
        )
        hub = self.registry.hub(session.hub)
        excluded = (connection.connection_id,) if request.no_echo else ()
        await hub.deliver(hub.select(hub.in_group(request.group), excluded=excluded), message)
        return None

    async def _user_event(self, session: Session, request: jp.UserEvent) -> tuple[str, str] | None:
        content_type = content_type_for(request.data_type)
        event = self.upstream_event(session, "user", request.event, request.data, content_type)
        if event is None:
            log.info("event %r of %s: no event handler takes it", request.event, session.label)
            return None
        try:
            response = await self.send_blocking_event(session, event)
        except UpstreamError as exc:
            log.warning("event %r of %s failed: %s", request.event, session.label, exc)
            return "InternalServerError", "the event handler could not be reached"
        if not response.ok:
            return "InternalServerError", f"the event handler answered {response.status}"
        try:
            reply = reply_message(response)
        except ReplyError as exc:
            log.warning("event %r of %s: %s", request.event, session.label, exc)
            return "InternalServerError", str(exc)
        if reply is not None:
            await session.deliver(reply)  # before the ack, as the service does
        return None
