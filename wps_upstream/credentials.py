"""The app's Entra identity, for the services it reaches without a key: Table storage and the Web PubSub REST
API (broadcasts and client tokens through `:generateToken`).

As Functions does for identity-based connections: in Azure the app's managed identity (system-assigned, or
the user-assigned one a client id names), elsewhere the developer's identity (`az login`, Visual Studio
Code, environment variables: `DefaultAzureCredential`). azure-identity is imported here only, and only when
a keyless connection is configured, so an app with keys never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wps_upstream.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


@dataclass(frozen=True)
class Identity:
    """A credential, and the TLS trust of the clients that use it."""

    credential: AsyncTokenCredential
    # True: the system's certificate authorities. A path: a PEM bundle to trust instead, for a local server
    # with its own certificate (bearer tokens travel only over https).
    connection_verify: bool | str = True


@dataclass(frozen=True)
class Identities:
    """The identity of each keyless connection; None where a key (connection string) is used instead."""

    web_pubsub: Identity | None = None
    storage: Identity | None = None

    async def close(self) -> None:
        """Close each distinct credential once."""
        closed: list[object] = []
        for identity in (self.web_pubsub, self.storage):
            if identity is not None and not any(identity.credential is seen for seen in closed):
                closed.append(identity.credential)
                await identity.credential.close()


def identities_for(settings: Settings) -> Identities:
    """The credentials the keyless connections of `settings` need (no network I/O happens here)."""
    web_pubsub = storage = None
    if settings.web_pubsub.keyless:
        web_pubsub = Identity(app_credential(settings.in_azure, client_id=settings.identity_client_id))
    account = settings.storage
    if account.connection_string is None:
        client_id = account.client_id or settings.identity_client_id
        if (
            web_pubsub is not None
            and not account.managed_identity
            and client_id == settings.identity_client_id
        ):
            storage = web_pubsub  # the same identity: one credential, one token cache
        else:
            storage = Identity(
                app_credential(settings.in_azure or account.managed_identity, client_id=client_id)
            )
    return Identities(web_pubsub=web_pubsub, storage=storage)


def app_credential(managed_identity: bool, *, client_id: str | None) -> AsyncTokenCredential:
    """A managed identity (in Azure, or when asked for), else the developer's identity."""
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    if managed_identity:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(managed_identity_client_id=client_id)
