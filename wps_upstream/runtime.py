"""The process-wide objects: settings and clients, created lazily on the first request and reused.

This is the only module state in the app. It is correct when Functions runs many instances: every
instance builds its own clients; nothing here is a cache of data.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from wps_upstream.handlers import Services
from wps_upstream.notify import Notifier, create_service_client
from wps_upstream.settings import Settings
from wps_upstream.store import MessageStore, PresenceStore


@dataclass(frozen=True)
class Runtime:
    """Settings plus every client, built once."""

    services: Services
    service_client: WebPubSubServiceClient
    message_store: MessageStore
    presence_store: PresenceStore

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Create the clients (no network I/O happens here)."""
        timeout, retries = settings.dependency_timeout_s, settings.dependency_retries
        messages = MessageStore.from_connection_string(
            settings.storage_connection_string,
            table_name=settings.messages_table,
            timeout_s=timeout,
            retries=retries,
            partitions=settings.messages_partitions,
        )
        presence = PresenceStore.from_connection_string(
            settings.storage_connection_string,
            table_name=settings.presence_table,
            timeout_s=timeout,
            retries=retries,
        )
        client = create_service_client(settings)
        services = Services(
            settings=settings,
            messages=messages,
            presence=presence,
            notifier=Notifier(client, settings.presence_broadcast),
        )
        return cls(services, client, messages, presence)

    async def close(self) -> None:
        await self.message_store.close()
        await self.presence_store.close()
        await self.service_client.close()


_current: tuple[asyncio.AbstractEventLoop, Runtime] | None = None


async def get_runtime() -> Runtime:
    """The runtime for this process, built on first use from os.environ.

    A settings problem raises ConfigurationError (naming the setting) on every request until fixed.
    Async clients belong to an event loop: the Functions worker has one, test runs may start several,
    so a new loop gets new clients.
    """
    global _current
    loop = asyncio.get_running_loop()
    if _current is None or _current[0] is not loop:
        _current = (loop, Runtime.build(Settings.from_environ(os.environ)))
    return _current[1]


async def reset_runtime() -> None:
    """Close and forget the runtime, so the next request reads the settings again (used by tests)."""
    global _current
    current, _current = _current, None
    if current is not None and current[0] is asyncio.get_running_loop():
        await current[1].close()
