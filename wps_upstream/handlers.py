"""What the app does on each event: accept users, record presence, store and broadcast messages.

Handlers receive typed events (wps_upstream.cloudevents) and the process-wide services; they never touch
raw headers. To handle another user event, write `async def on_<name>(event, services)` returning an
EventResponse and add it to USER_EVENTS.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from wps_upstream.cloudevents import (
    ConnectedEvent,
    ConnectEvent,
    DisconnectedEvent,
    Event,
    EventResponse,
    UserEvent,
    acknowledged,
    choose_subprotocol,
    connect_accepted,
    json_body,
    no_content,
    user_event_reply,
)
from wps_upstream.errors import BadRequest, DependencyFailed, PayloadTooLarge, Unauthorized
from wps_upstream.messages import ChatMessage, DataType, iso_time
from wps_upstream.settings import Settings
from wps_upstream.store import InvalidMessage, MessageTooLarge, StoreUnavailable

logger = logging.getLogger(__name__)


class MessageStorePort(Protocol):
    async def append(
        self,
        *,
        hub: str,
        connection_id: str,
        event_id: str,
        user_id: str,
        data_type: DataType,
        data: bytes,
        received_at: datetime,
    ) -> tuple[ChatMessage, bool]: ...

    async def page(
        self, *, hub: str, limit: int, before: str | None = None
    ) -> tuple[list[ChatMessage], str | None]: ...


class PresenceStorePort(Protocol):
    async def connected(self, *, hub: str, connection_id: str, user_id: str, time: str) -> None: ...

    async def disconnected(self, *, hub: str, connection_id: str) -> None: ...


class NotifierPort(Protocol):
    async def broadcast_message(
        self, message: dict[str, Any], *, event_id: str, connection_id: str
    ) -> bool: ...

    async def broadcast_presence(
        self, notice: dict[str, Any], *, event_id: str, connection_id: str
    ) -> bool: ...


@dataclass(frozen=True)
class Services:
    """What handlers need: settings, the stores and the notifier (created once per process)."""

    settings: Settings
    messages: MessageStorePort
    presence: PresenceStorePort
    notifier: NotifierPort


async def dispatch(event: Event, services: Services) -> EventResponse:
    """Run the handler for an event."""
    if isinstance(event, ConnectEvent):
        return await on_connect(event, services)
    if isinstance(event, ConnectedEvent):
        return await on_connected(event, services)
    if isinstance(event, DisconnectedEvent):
        return await on_disconnected(event, services)
    handler = USER_EVENTS.get(event.context.event_name.lower(), on_unhandled_user_event)
    return await handler(event, services)


async def on_connect(event: ConnectEvent, services: Services) -> EventResponse:
    """Accept only users with an id (the token's `sub`); pick a JSON subprotocol when offered.

    Blocking and on every connection, so no storage or REST call here.
    """
    user_id = event.context.user_id
    if not user_id:
        raise Unauthorized("Connections need a user id: get the client URL from /api/negotiate.")
    return connect_accepted(user_id=user_id, subprotocol=choose_subprotocol(event.subprotocols))


async def on_connected(event: ConnectedEvent, services: Services) -> EventResponse:
    """Record presence (failure -> 5xx so the service retries), then tell everyone (best effort)."""
    context = event.context
    time = event_time(context.time)
    user_id = context.user_id or ""
    try:
        await services.presence.connected(
            hub=services.settings.hub, connection_id=context.connection_id, user_id=user_id, time=time
        )
    except StoreUnavailable as error:
        raise DependencyFailed("Presence could not be recorded; storage is unavailable.") from error
    notice = {
        "type": "presence",
        "event": "connected",
        "userId": user_id,
        "connectionId": context.connection_id,
        "time": time,
    }
    await services.notifier.broadcast_presence(
        notice, event_id=context.event_id, connection_id=context.connection_id
    )
    return acknowledged()


async def on_disconnected(event: DisconnectedEvent, services: Services) -> EventResponse:
    """Remove presence (idempotent; failure -> 5xx), then tell everyone (best effort)."""
    context = event.context
    try:
        await services.presence.disconnected(hub=services.settings.hub, connection_id=context.connection_id)
    except StoreUnavailable as error:
        raise DependencyFailed("Presence could not be removed; storage is unavailable.") from error
    notice: dict[str, Any] = {
        "type": "presence",
        "event": "disconnected",
        "userId": context.user_id or "",
        "connectionId": context.connection_id,
        "time": event_time(context.time),
    }
    if event.reason is not None:
        notice["reason"] = event.reason
    await services.notifier.broadcast_presence(
        notice, event_id=context.event_id, connection_id=context.connection_id
    )
    return acknowledged()


async def on_message(event: UserEvent, services: Services) -> EventResponse:
    """Store first, broadcast, then answer the sender with the stored id.

    A redelivery (same connection id and ce-id) finds the stored message: it is broadcast again with
    the same id and answered the same way, so a crash between store and broadcast loses nothing.
    """
    context = event.context
    if not context.user_id:
        raise Unauthorized("Messages need a user id: get the client URL from /api/negotiate.")
    try:
        message, created = await services.messages.append(
            hub=services.settings.hub,
            connection_id=context.connection_id,
            event_id=context.event_id,
            user_id=context.user_id,
            data_type=event.data_type,
            data=event.data,
            received_at=datetime.now(UTC),
        )
    except MessageTooLarge as error:
        raise PayloadTooLarge(
            f"The message is {error.size} bytes; the largest message this chat stores is {error.limit} bytes."
        ) from error
    except InvalidMessage as error:
        raise BadRequest(f"The message was refused: {error}.") from error
    except StoreUnavailable as error:
        raise DependencyFailed("The message was not stored (storage unavailable); send it again.") from error
    if not created:
        logger.info(
            "Event %s of connection %s was already stored as %s",
            context.event_id,
            context.connection_id,
            message.id,
        )
    await services.notifier.broadcast_message(
        message.to_json(), event_id=context.event_id, connection_id=context.connection_id
    )
    return user_event_reply(json_body({"id": message.id, "time": message.time}), "json")


async def on_unhandled_user_event(event: UserEvent, services: Services) -> EventResponse:
    """Events without a handler are accepted and ignored (204: nothing is sent to the client)."""
    return no_content()


UserEventHandler = Callable[[UserEvent, Services], Awaitable[EventResponse]]

# User event name (lower-case) -> handler. Add an entry to handle another event.
USER_EVENTS: Mapping[str, UserEventHandler] = MappingProxyType({"message": on_message})


def event_time(ce_time: str | None) -> str:
    """ce-time in the app's time format; the current time when absent or unreadable."""
    if ce_time:
        try:
            return iso_time(datetime.fromisoformat(ce_time))
        except ValueError:
            pass
    return iso_time(datetime.now(UTC))
