"""The one composition root: settings and every client, built on the first request and reused.

This is the only module state in the app. It is correct when Functions runs many instances: every
instance builds its own clients; nothing here is a cache of data.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from wps_upstream import credentials
from wps_upstream.credentials import Identities
from wps_upstream.notify import Notifier, create_service_client
from wps_upstream.ratelimit import RateLimiter
from wps_upstream.settings import Settings
from wps_upstream.store import MessageStore, PresenceStore
from wps_upstream.store.tables import Table, TableEndpoint
from wps_upstream.webhook_auth import WebhookAuth


@dataclass(frozen=True)
class Services:
    """What the handlers and routes use: settings, webhook auth, the stores, broadcasts, the service."""

    settings: Settings
    webhook_auth: WebhookAuth
    messages: MessageStore
    presence: PresenceStore
    notifier: Notifier
    service: WebPubSubServiceClient  # the REST API: broadcasts go through `notifier`, tokens from here
    message_rate: RateLimiter  # per connection, in this instance
    identities: Identities = field(
        default_factory=Identities
    )  # the Entra credentials of keyless connections (none with keys)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Create the clients (no network I/O happens here)."""
        timeout, retries = settings.dependency_timeout_s, settings.dependency_retries
        identities = credentials.identities_for(settings)
        service = create_service_client(settings, identities.web_pubsub)
        account = table_account(settings, identities)
        return cls(
            settings=settings,
            webhook_auth=WebhookAuth.from_settings(settings),
            messages=MessageStore(
                Table(account, settings.messages_table, timeout, retries), settings.messages_partitions
            ),
            presence=PresenceStore(Table(account, settings.presence_table, timeout, retries)),
            notifier=Notifier(service, settings.presence_broadcast),
            service=service,
            message_rate=RateLimiter(settings.message_rate_limit, burst=2 * settings.message_rate_limit),
            identities=identities,
        )

    async def close(self) -> None:
        await self.messages.close()
        await self.presence.close()
        await self.service.close()
        await self.webhook_auth.close()
        await self.identities.close()


def table_account(settings: Settings, identities: Identities) -> str | TableEndpoint:
    """The storage connection string, or the table endpoint and the identity that reaches it."""
    storage = settings.storage
    if storage.connection_string is not None:
        return storage.connection_string
    if storage.table_endpoint is None or identities.storage is None:
        raise ValueError("keyless storage needs a table endpoint and an identity")
    identity = identities.storage
    return TableEndpoint(storage.table_endpoint, identity.credential, identity.connection_verify)


_current: tuple[asyncio.AbstractEventLoop, Services] | None = None


async def get_services() -> Services:
    """The services of this process, built on first use from os.environ.

    A settings problem raises ConfigurationError (naming the setting) on every request until fixed.
    Async clients belong to an event loop: the Functions worker has one, test runs may start several,
    so a new loop gets new clients.
    """
    global _current
    loop = asyncio.get_running_loop()
    if _current is None or _current[0] is not loop:
        _current = (loop, Services.build(Settings.from_environ(os.environ)))
    return _current[1]


async def reset_services() -> None:
    """Close and forget the services, so the next request reads the settings again (used by tests)."""
    global _current
    current, _current = _current, None
    if current is not None and current[0] is asyncio.get_running_loop():
        await current[1].close()
