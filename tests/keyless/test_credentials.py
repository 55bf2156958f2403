"""Which identity each keyless connection uses: a managed identity in Azure, the developer's elsewhere."""

from __future__ import annotations

from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

from tests.constants import web_pubsub_connection_string
from tests.keyless.local_issuer import SERVICE_CLIENT_ID, LocalIssuer, LocalIssuerCredential
from wps_upstream.credentials import Identities, Identity, identities_for
from wps_upstream.settings import Settings

KEYLESS = {
    "WebPubSubEndpoint": "https://wps.webpubsub.azure.com",
    "AzureWebJobsStorage__accountName": "stabc",
}


def settings(**env: str) -> Settings:
    return Settings.from_environ(env)


def test_with_keys_no_identity_is_made() -> None:
    keyed = settings(
        WebPubSubConnectionString=web_pubsub_connection_string("http://localhost:8080"),
        AzureWebJobsStorage="UseDevelopmentStorage=true",
    )
    assert identities_for(keyed) == Identities(None, None)


async def test_in_azure_both_connections_share_the_apps_managed_identity() -> None:
    identities = identities_for(settings(**KEYLESS, WEBSITE_INSTANCE_ID="abc"))
    assert identities.web_pubsub is not None and identities.storage is identities.web_pubsub
    assert isinstance(identities.web_pubsub.credential, ManagedIdentityCredential)
    await identities.close()


async def test_outside_azure_the_developers_identity_is_used() -> None:
    identities = identities_for(settings(**KEYLESS))
    assert identities.web_pubsub is not None
    assert isinstance(identities.web_pubsub.credential, DefaultAzureCredential)
    await identities.close()


async def test_storage_asking_for_a_managed_identity_gets_its_own_credential() -> None:
    identities = identities_for(
        settings(
            **KEYLESS,
            AzureWebJobsStorage__credential="managedidentity",
            AzureWebJobsStorage__clientId=SERVICE_CLIENT_ID,
        )
    )
    assert identities.storage is not None and identities.storage is not identities.web_pubsub
    assert isinstance(identities.storage.credential, ManagedIdentityCredential)
    await identities.close()


async def test_a_shared_credential_is_closed_once(issuer: LocalIssuer) -> None:
    credential = LocalIssuerCredential(issuer)
    identity = Identity(credential)
    await Identities(identity, identity).close()
    assert credential.closes == 1
