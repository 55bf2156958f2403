"""Keyless settings: the Web PubSub endpoint, identity-based storage, Entra tokens; errors name each."""

from __future__ import annotations

import pytest

from tests.constants import ACCESS_KEY, web_pubsub_connection_string
from tests.keyless.local_issuer import SERVICE_CLIENT_ID, SERVICE_OBJECT_ID, TENANT_ID, UPSTREAM_AUDIENCE
from wps_upstream.errors import ConfigurationError
from wps_upstream.settings import Settings, StorageAccount, UpstreamAuth

ENDPOINT = "https://wps-abc.webpubsub.azure.com"
KEYLESS = {"WebPubSubEndpoint": ENDPOINT, "AzureWebJobsStorage__accountName": "stabc"}
UPSTREAM = {"WebPubSubUpstreamAudience": UPSTREAM_AUDIENCE, "WebPubSubUpstreamTenantId": TENANT_ID}


def settings(**env: str) -> Settings:
    return Settings.from_environ(env)


def error_for(**env: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environ(env)
    return caught.value.message


def test_web_pubsub_endpoint_means_keyless() -> None:
    connection = settings(**KEYLESS).web_pubsub
    assert (connection.endpoint, connection.access_key, connection.keyless) == (ENDPOINT, None, True)


def test_the_endpoints_host_is_the_allowed_origin() -> None:
    assert settings(**KEYLESS).allowed_origins == {"wps-abc.webpubsub.azure.com"}


def test_a_connection_string_and_an_endpoint_together_are_refused_naming_both() -> None:
    message = error_for(**KEYLESS, WebPubSubConnectionString=web_pubsub_connection_string(ENDPOINT))
    assert "WebPubSubConnectionString" in message and "WebPubSubEndpoint" in message
    assert ACCESS_KEY not in message


def test_without_either_the_error_names_both_ways_to_reach_the_service() -> None:
    message = error_for(AzureWebJobsStorage="UseDevelopmentStorage=true")
    assert "WebPubSubConnectionString" in message and "WebPubSubEndpoint" in message


def test_a_connection_string_without_a_key_points_to_the_endpoint_setting() -> None:
    message = error_for(
        WebPubSubConnectionString=f"Endpoint={ENDPOINT};Version=1.0;", AzureWebJobsStorage="x"
    )
    assert "AccessKey" in message and "WebPubSubEndpoint" in message


@pytest.mark.parametrize("value", ["wps-abc.webpubsub.azure.com", "ftp://x", "https://x/path"])
def test_a_malformed_endpoint_is_refused_naming_the_setting(value: str) -> None:
    assert "WebPubSubEndpoint" in error_for(**{**KEYLESS, "WebPubSubEndpoint": value})


def test_an_account_name_reaches_the_public_clouds_table_endpoint() -> None:
    storage = settings(**KEYLESS).storage
    assert storage == StorageAccount(None, "https://stabc.table.core.windows.net")


def test_a_table_service_uri_is_used_as_given() -> None:
    uri = "https://stabc.table.core.usgovcloudapi.net"
    storage = settings(WebPubSubEndpoint=ENDPOINT, AzureWebJobsStorage__tableServiceUri=uri + "/").storage
    assert storage.table_endpoint == uri


def test_a_connection_string_wins_over_identity_settings_as_for_the_functions_host() -> None:
    storage = settings(**KEYLESS, AzureWebJobsStorage="UseDevelopmentStorage=true").storage
    assert (storage.connection_string, storage.table_endpoint) == ("UseDevelopmentStorage=true", None)


def test_without_storage_the_error_names_the_three_settings() -> None:
    message = error_for(WebPubSubEndpoint=ENDPOINT)
    for name in ("AzureWebJobsStorage", "__accountName", "__tableServiceUri"):
        assert name in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AzureWebJobsStorage__accountName", "My-Account"),
        ("AzureWebJobsStorage__tableServiceUri", "http://stabc.table.core.windows.net"),
        ("AzureWebJobsStorage__credential", "connectionstring"),
        ("AzureWebJobsStorage__clientId", "not-a-guid"),
    ],
)
def test_malformed_storage_identity_settings_are_refused_naming_them(name: str, value: str) -> None:
    assert name in error_for(**{**KEYLESS, name: value})


def test_http_is_accepted_for_a_table_service_on_this_machine() -> None:
    uri = "http://127.0.0.1:10002/devstoreaccount1"
    assert (
        settings(WebPubSubEndpoint=ENDPOINT, AzureWebJobsStorage__tableServiceUri=uri).storage.table_endpoint
        == uri
    )


def test_a_user_assigned_identity_for_storage_is_read_as_functions_documents_it() -> None:
    storage = settings(
        **KEYLESS,
        AzureWebJobsStorage__credential="managedidentity",
        AzureWebJobsStorage__clientId=SERVICE_CLIENT_ID,
    ).storage
    assert (storage.managed_identity, storage.client_id) == (True, SERVICE_CLIENT_ID)


def test_a_storage_connection_string_is_hidden_from_repr() -> None:
    assert "AccountKey" not in repr(StorageAccount("AccountName=a;AccountKey=secret"))


def test_without_an_audience_there_is_no_upstream_auth() -> None:
    assert settings(**KEYLESS).upstream_auth is None


def test_upstream_auth_defaults_to_the_public_cloud_authority_of_the_tenant() -> None:
    auth = settings(**KEYLESS, **UPSTREAM).upstream_auth
    assert auth == UpstreamAuth(
        UPSTREAM_AUDIENCE, TENANT_ID, f"https://login.microsoftonline.com/{TENANT_ID}", frozenset()
    )
    assert auth.public_cloud


def test_allowed_callers_are_guids_lower_cased() -> None:
    env = {
        **KEYLESS,
        **UPSTREAM,
        "WebPubSubUpstreamAllowedCallers": f"{SERVICE_OBJECT_ID.upper()}, {SERVICE_CLIENT_ID}",
    }
    auth = settings(**env).upstream_auth
    assert auth is not None and auth.allowed_callers == {SERVICE_OBJECT_ID, SERVICE_CLIENT_ID}


def test_an_audience_without_a_tenant_is_refused_naming_the_tenant_setting() -> None:
    message = error_for(**KEYLESS, WebPubSubUpstreamAudience=UPSTREAM_AUDIENCE)
    assert "WebPubSubUpstreamTenantId is missing" in message


@pytest.mark.parametrize(
    "name", ["WebPubSubUpstreamTenantId", "WebPubSubUpstreamAuthority", "WebPubSubUpstreamAllowedCallers"]
)
def test_upstream_settings_without_an_audience_are_refused_rather_than_ignored(name: str) -> None:
    message = error_for(**KEYLESS, **{name: TENANT_ID})
    assert "WebPubSubUpstreamAudience is missing" in message and name in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WebPubSubUpstreamTenantId", "contoso.onmicrosoft.com"),
        ("WebPubSubUpstreamAuthority", "https://login.microsoftonline.us"),
        ("WebPubSubUpstreamAuthority", f"http://login.example.com/{TENANT_ID}"),
        ("WebPubSubUpstreamAllowedCallers", "web-pubsub"),
    ],
)
def test_malformed_upstream_settings_are_refused_naming_them(name: str, value: str) -> None:
    assert name in error_for(**{**KEYLESS, **UPSTREAM, name: value})


def test_a_custom_authority_may_be_http_on_this_machine() -> None:
    authority = f"http://127.0.0.1:9999/{TENANT_ID}"
    auth = settings(**KEYLESS, **UPSTREAM, WebPubSubUpstreamAuthority=authority + "/").upstream_auth
    assert auth is not None and (auth.authority, auth.public_cloud) == (authority, False)


def test_running_in_azure_and_a_user_assigned_identity_are_read() -> None:
    value = settings(**KEYLESS, WEBSITE_INSTANCE_ID="abc", AZURE_CLIENT_ID=SERVICE_CLIENT_ID)
    assert (value.in_azure, value.identity_client_id) == (True, SERVICE_CLIENT_ID)
