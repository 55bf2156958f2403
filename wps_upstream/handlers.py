"""What the app does on each event: accept users, record presence, store and broadcast messages.

Handlers receive typed events (wps_upstream.cloudevents) and the process-wide services; they never touch
raw headers, and raise app errors (wps_upstream.errors) that the HTTP layer turns into answers. To handle
another user event, write `async def on_<name>(event, services)` returning an EventResponse and add it
to USER_EVENTS.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from wps_upstream import ids
from wps_upstream.chat import PresenceNotice
from wps_upstream.cloudevents import (
    USER_NAME_STATE,
    ConnectedEvent,
    ConnectEvent,
    DisconnectedEvent,
    Event,
    EventResponse,
    UserEvent,
    acknowledged,
    choose_subprotocol,
    connect_accepted,
    no_content,
    user_event_reply,
)
from wps_upstream.errors import TooManyRequests, Unauthorized
from wps_upstream.payload import json_dumps
from wps_upstream.services import Services
from wps_upstream.times import event_time

logger = logging.getLogger(__name__)

USER_NAME_QUERY = "userName"  # negotiate puts the display name in the client URL's query under this name


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
    context = event.context
    user_id = context.user_id
    if not user_id:
        raise Unauthorized("Connections need a user id: get the client URL from /api/negotiate.")
    subprotocol = choose_subprotocol(event.subprotocols)
    offered_names = event.query.get(USER_NAME_QUERY)
    name = ids.display_name(offered_names[0]) if offered_names else None
    if name is None:
        return connect_accepted(user_id=user_id, subprotocol=subprotocol)
    # Kept in the connection state, the name comes back with every later event of the connection.
    states = context.states | {USER_NAME_STATE: name}
    return connect_accepted(user_id=user_id, subprotocol=subprotocol, states=states)


async def on_connected(event: ConnectedEvent, services: Services) -> EventResponse:
    """Record presence (failure -> 5xx so the service retries), then tell everyone (best effort).

    A `connected` that arrives after its connection's `disconnected` records nothing and says nothing.
    """
    context = event.context
    user_id, time = context.user_id or "", event_time(context.time)
    user = await services.presence.connected(
        hub=services.settings.hub,
        connection_id=context.connection_id,
        user_id=user_id,
        time=time,
        user_name=context.user_name,
    )
    if user is not None:
        notice = PresenceNotice(
            "connected", user_id, context.connection_id, time, user, user_name=context.user_name
        )
        await services.notifier.broadcast_presence(notice, event_id=context.event_id)
    return acknowledged()


async def on_disconnected(event: DisconnectedEvent, services: Services) -> EventResponse:
    """Mark the connection gone (idempotent; failure -> 5xx), then tell everyone (best effort)."""
    context = event.context
    user_id, time = context.user_id or "", event_time(context.time)
    user = await services.presence.disconnected(
        hub=services.settings.hub, connection_id=context.connection_id, user_id=user_id, time=time
    )
    notice = PresenceNotice(
        "disconnected", user_id, context.connection_id, time, user, event.reason, user_name=context.user_name
    )
    await services.notifier.broadcast_presence(notice, event_id=context.event_id)
    return acknowledged()


async def on_message(event: UserEvent, services: Services) -> EventResponse:
    """Store first, broadcast, then answer the sender with the stored id.

    A redelivery (same connection id and ce-id) finds the stored message: it is broadcast again with
    the same id and answered the same way, so a crash between store and broadcast loses nothing.
    """
    context = event.context
    if not context.user_id:
        raise Unauthorized("Messages need a user id: get the client URL from /api/negotiate.")
    if not services.message_rate.allow(context.connection_id):
        rate = services.message_rate
        raise TooManyRequests(
            f"Too many messages from this connection: at most {rate.rate:g} per second "
            f"(bursts of {rate.burst:g}); wait a moment and send again. Nothing was stored."
        )
    message, created = await services.messages.append(
        hub=services.settings.hub,
        connection_id=context.connection_id,
        event_id=context.event_id,
        user_id=context.user_id,
        user_name=context.user_name,
        payload=event.payload,
        received_at=datetime.now(UTC),
    )
    if not created:
        logger.info(
            "Event %s of connection %s was already stored as %s",
            context.event_id,
            context.connection_id,
            message.id,
        )
    await services.notifier.broadcast_message(message, event_id=context.event_id)
    return user_event_reply(json_dumps({"id": message.id, "time": message.time}), "json")


async def on_unhandled_user_event(event: UserEvent, services: Services) -> EventResponse:
    """Events without a handler are accepted and ignored (204: nothing is sent to the client)."""
    return no_content()


UserEventHandler = Callable[[UserEvent, Services], Awaitable[EventResponse]]

# User event name (lower-case) -> handler. Add an entry to handle another event.
USER_EVENTS: Mapping[str, UserEventHandler] = MappingProxyType({"message": on_message})
