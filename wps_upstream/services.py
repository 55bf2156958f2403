"""The one composition root: settings and every client, built on the first request and reused.

This is the only module state in the app. It is correct when Functions runs many instances: every
instance builds its own clients; nothing here is a cache of data.

Each client is built the first time it is used, so the Azure SDKs (and aiohttp under them) are imported
then and not before: a connect event uses none of them and is answered without paying for the import.
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import TYPE_CHECKING

from wps_upstream import credentials
from wps_upstream.credentials import Identities
from wps_upstream.ratelimit import RateLimiter
from wps_upstream.sdk_options import quiet_request_logs
from wps_upstream.settings import Settings
from wps_upstream.webhook_auth import WebhookAuth

if TYPE_CHECKING:
    from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

    from wps_upstream.notify import Notifier
    from wps_upstream.store import MessageStore, PresenceStore
    from wps_upstream.store.tables import Table, TableEndpoint


class Services:
    """What the handlers and routes use: settings, webhook auth, the stores, broadcasts, the service.

    `messages`, `presence`, `notifier` and `service` are built on first use unless given (tests give fakes).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        webhook_auth: WebhookAuth,
        message_rate: RateLimiter,  # per connection, in this instance
        identities: Identities | None = None,  # the Entra credentials of keyless connections
        messages: MessageStore | None = None,
        presence: PresenceStore | None = None,
        notifier: Notifier | None = None,
        service: WebPubSubServiceClient | None = None,
    ) -> None:
        self.settings = settings
        self.webhook_auth = webhook_auth
        self.message_rate = message_rate
        self.identities = identities or Identities()
        given = {"messages": messages, "presence": presence, "notifier": notifier, "service": service}
        # functools.cached_property looks in the instance dict first: a given client is used as it is.
        self.__dict__.update({name: client for name, client in given.items() if client is not None})

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """The services for `settings`; no client is created and no network I/O happens here."""
        quiet_request_logs()
        return cls(
            settings=settings,
            webhook_auth=WebhookAuth.from_settings(settings),
            message_rate=RateLimiter(settings.message_rate_limit, burst=2 * settings.message_rate_limit),
            identities=credentials.identities_for(settings),
        )

    @functools.cached_property
    def messages(self) -> MessageStore:
        from wps_upstream.store import MessageStore

        settings = self.settings
        return MessageStore(self._table(settings.messages_table), settings.messages_partitions)

    @functools.cached_property
    def presence(self) -> PresenceStore:
        from wps_upstream.store import PresenceStore

        return PresenceStore(self._table(self.settings.presence_table))

    def _table(self, name: str) -> Table:
        """A table of the app's storage account, with the dependency timeout and retries."""
        from wps_upstream.store.tables import Table

        settings = self.settings
        return Table(self._table_account, name, settings.dependency_timeout_s, settings.dependency_retries)

    @property
    def _table_account(self) -> str | TableEndpoint:
        """The storage connection string, or the table endpoint and the identity that reaches it."""
        from wps_upstream.store.tables import TableEndpoint

        storage = self.settings.storage
        if storage.connection_string is not None:
            return storage.connection_string
        identity = self.identities.storage
        if storage.table_endpoint is None or identity is None:
            raise ValueError("keyless storage needs a table endpoint and an identity")
        return TableEndpoint(storage.table_endpoint, identity.credential, identity.connection_verify)

    @functools.cached_property
    def service(self) -> WebPubSubServiceClient:
        """The REST API: broadcasts go through `notifier`, tokens from here."""
        from wps_upstream.notify import create_service_client

        return create_service_client(self.settings, self.identities.web_pubsub)

    @functools.cached_property
    def notifier(self) -> Notifier:
        from wps_upstream.notify import Notifier

        return Notifier(self.service, self.settings.presence_broadcast)

    async def close(self) -> None:
        """Close the clients that were built (or given)."""
        built = self.__dict__
        if "messages" in built:
            await built["messages"].close()
        if "presence" in built:
            await built["presence"].close()
        if "service" in built:
            await built["service"].close()
        await self.webhook_auth.close()
        await self.identities.close()


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
