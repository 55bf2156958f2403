"""Broadcasts through the Web PubSub REST API (azure-messaging-webpubsubservice, async client).

A broadcast is best effort: a failure is logged with the event id and never fails the event, because
the message is already stored (clients catch up through /api/messages) and presence is advisory.
"""

from __future__ import annotations

import logging
from typing import Any

from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from wps_upstream.chat import ChatMessage, PresenceNotice
from wps_upstream.credentials import Identity
from wps_upstream.errors import ConfigurationError
from wps_upstream.sdk_options import transport_options
from wps_upstream.settings import PresenceBroadcast, Settings

logger = logging.getLogger(__name__)


def create_service_client(settings: Settings, identity: Identity | None = None) -> WebPubSubServiceClient:
    """The service client, with explicit timeouts and a small retry budget.

    With a connection string the SDK signs REST calls and client tokens with the access key; keyless
    (`WebPubSubEndpoint`), `identity`'s Entra tokens authenticate REST calls, and client tokens come from
    the service's `:generateToken`. The SDK defaults (300 s timeouts, 10 retries) would let a hung service
    hold a function for minutes.
    """
    options = {
        "connection_timeout": settings.dependency_timeout_s,
        "read_timeout": settings.dependency_timeout_s,
        "retry_total": settings.dependency_retries,
        "retry_backoff_factor": 0.2,
        **transport_options(),
    }
    connection = settings.web_pubsub
    if connection.connection_string is not None:
        return WebPubSubServiceClient.from_connection_string(
            connection.connection_string, hub=settings.hub, **options
        )
    if identity is None:
        raise ConfigurationError("WebPubSubEndpoint is set, but the app has no identity to reach it with.")
    return WebPubSubServiceClient(
        connection.endpoint,
        hub=settings.hub,
        credential=identity.credential,
        connection_verify=identity.connection_verify,
        **options,
    )


class Notifier:
    """Sends chat messages and presence notices to connected clients."""

    def __init__(self, client: WebPubSubServiceClient, presence: PresenceBroadcast) -> None:
        self.client = client
        self.presence = presence

    async def broadcast_message(self, message: ChatMessage, *, event_id: str) -> bool:
        """Send a stored message to every connection; False (logged) if the service call failed."""
        return await self._send(
            message.to_json(), None, event_id=event_id, connection_id=message.connection_id
        )

    async def broadcast_presence(self, notice: PresenceNotice, *, event_id: str) -> bool:
        """Send a presence notice where PresenceBroadcast says (all, one group, or nowhere)."""
        if self.presence.mode == "off":
            return True
        group = self.presence.group if self.presence.mode == "group" else None
        return await self._send(
            notice.to_json(), group, event_id=event_id, connection_id=notice.connection_id
        )

    async def _send(
        self, body: dict[str, Any], group: str | None, *, event_id: str, connection_id: str
    ) -> bool:
        try:
            if group is None:
                await self.client.send_to_all(body, content_type="application/json")
            else:
                await self.client.send_to_group(group, body, content_type="application/json")
        except Exception as error:  # any failure: the event itself has succeeded; say so in the log
            logger.warning(
                "Broadcast failed for event %s of connection %s: %s: %s",
                event_id,
                connection_id,
                type(error).__name__,
                error,
            )
            return False
        return True
