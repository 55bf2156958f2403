"""Settings: defaults, parsing, and clear errors that name the setting (never its value)."""

from __future__ import annotations

import pytest

from tests.constants import ACCESS_KEY, web_pubsub_connection_string
from wps_upstream.errors import ConfigurationError
from wps_upstream.settings import PresenceBroadcast, Settings, parse_web_pubsub_connection_string

KEY = ACCESS_KEY
LOCAL = web_pubsub_connection_string("http://localhost:8080")
REQUIRED = {"WebPubSubConnectionString": LOCAL, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def settings(**extra: str) -> Settings:
    return Settings.from_environ({**REQUIRED, **extra})


def error_for(**env: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environ(env)
    return caught.value.message


def test_defaults() -> None:
    value = settings()
    assert value.hub == "chat"
    assert value.negotiate_allow_query_user_id is False
    assert value.token_lifetime_minutes == 60
    assert value.presence_broadcast == PresenceBroadcast("all")
    assert (value.messages_table, value.presence_table) == ("messages", "presence")
    assert value.storage_connection_string == "UseDevelopmentStorage=true"
    assert value.messages_partitions == 1


@pytest.mark.parametrize("name", ["WebPubSubConnectionString", "AzureWebJobsStorage"])
def test_missing_required_setting_is_named(name: str) -> None:
    env = {key: value for key, value in REQUIRED.items() if key != name}
    assert name in error_for(**env)


def test_connection_string_endpoint_and_key_are_parsed() -> None:
    connection = parse_web_pubsub_connection_string(LOCAL)
    assert (connection.endpoint, connection.access_key) == ("http://localhost:8080", KEY)
    assert (connection.host, connection.hostname) == ("localhost:8080", "localhost")


def test_connection_string_port_is_appended_to_the_endpoint() -> None:
    connection = parse_web_pubsub_connection_string(f"Endpoint=http://localhost;Port=8080;AccessKey={KEY};")
    assert connection.endpoint == "http://localhost:8080"


def test_connection_string_keys_are_case_insensitive_and_trailing_slash_dropped() -> None:
    connection = parse_web_pubsub_connection_string(
        f"endpoint=https://X.webpubsub.azure.com/;accesskey={KEY}"
    )
    assert connection.endpoint == "https://X.webpubsub.azure.com"
    assert connection.host == "x.webpubsub.azure.com"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Endpoint=http://x;oops", "key=value"),
        (f"AccessKey={KEY}", "Endpoint"),
        ("Endpoint=http://x;Version=1.0", "AccessKey"),
        (f"Endpoint=ftp://x;AccessKey={KEY}", "http"),
        (f"Endpoint=http://x/path;AccessKey={KEY}", "path"),
        (f"Endpoint=http://x;Port=abc;AccessKey={KEY}", "Port"),
        (f"Endpoint=http://x:1;Port=2;AccessKey={KEY}", "Port"),
    ],
)
def test_malformed_connection_string_is_refused_naming_the_setting(value: str, problem: str) -> None:
    message = error_for(WebPubSubConnectionString=value, AzureWebJobsStorage="x")
    assert "WebPubSubConnectionString" in message
    assert problem in message
    assert KEY not in message


def test_connection_repr_hides_the_key() -> None:
    assert KEY not in repr(settings()) and KEY not in repr(settings().web_pubsub)


def test_allowed_origins_are_the_endpoint_host_with_and_without_port_plus_extras() -> None:
    value = settings(WebPubSubAllowedOrigins="https://X.webpubsub.azure.com:8443, other.example.com")
    assert value.allowed_origins == {
        "localhost:8080",
        "localhost",
        "x.webpubsub.azure.com:8443",
        "other.example.com",
    }


def test_wildcard_origin_is_not_accepted() -> None:
    assert "WebPubSubAllowedOrigins" in error_for(**REQUIRED, WebPubSubAllowedOrigins="*")


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("True", True), ("1", True), ("false", False)])
def test_negotiate_allow_query_user_id_is_a_boolean(raw: str, expected: bool) -> None:
    assert settings(NegotiateAllowQueryUserId=raw).negotiate_allow_query_user_id is expected


def test_malformed_boolean_is_refused_naming_the_setting() -> None:
    assert "NegotiateAllowQueryUserId" in error_for(**REQUIRED, NegotiateAllowQueryUserId="maybe")


@pytest.mark.parametrize("raw", ["0", "1441", "ten"])
def test_token_lifetime_out_of_range_is_refused(raw: str) -> None:
    assert "WebPubSubTokenLifetimeMinutes" in error_for(**REQUIRED, WebPubSubTokenLifetimeMinutes=raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("all", PresenceBroadcast("all")),
        ("OFF", PresenceBroadcast("off")),
        ("group:lobby", PresenceBroadcast("group", "lobby")),
    ],
)
def test_presence_broadcast_modes(raw: str, expected: PresenceBroadcast) -> None:
    assert settings(PresenceBroadcast=raw).presence_broadcast == expected


@pytest.mark.parametrize("raw", ["everyone", "group:", "group"])
def test_malformed_presence_broadcast_is_refused(raw: str) -> None:
    assert "PresenceBroadcast" in error_for(**REQUIRED, PresenceBroadcast=raw)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("WebPubSubHub", "1chat"),
        ("MessagesTableName", "my-table"),
        ("MessagesTableName", "tables"),
        ("PresenceTableName", "Tables"),
    ],
)
def test_malformed_names_are_refused(name: str, raw: str) -> None:
    assert name in error_for(**REQUIRED, **{name: raw})


def test_message_rate_limit_defaults_to_five_per_second_and_zero_turns_it_off() -> None:
    assert settings().message_rate_limit == 5
    assert settings(MessageRateLimit="0").message_rate_limit == 0
    assert "MessageRateLimit" in error_for(**REQUIRED, MessageRateLimit="fast")


def test_query_user_ids_stay_allowed_locally() -> None:
    assert settings(NegotiateAllowQueryUserId="true").negotiate_allow_query_user_id is True


def test_messages_partitions_spread_a_hub() -> None:
    assert settings(MessagesPartitions="8").messages_partitions == 8


@pytest.mark.parametrize("raw", ["0", "65", "many"])
def test_messages_partitions_out_of_range_is_named(raw: str) -> None:
    assert "MessagesPartitions" in error_for(**REQUIRED, MessagesPartitions=raw)
