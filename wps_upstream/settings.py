"""Typed settings, read once from the environment (app settings in Azure, local.settings.json locally).

`Settings.from_environ` validates everything and raises `ConfigurationError` naming the setting that is
missing or malformed; it never echoes a secret value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from wps_upstream.errors import ConfigurationError

HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_`,.\[\]]{0,127}$")
TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
RESERVED_TABLE_NAMES = frozenset({"tables"})  # Azure refuses this name (case-insensitively)
MAX_PARTITIONS = 64  # a history page reads every partition of the hub
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


@dataclass(frozen=True)
class WebPubSubConnection:
    """The parsed `WebPubSubConnectionString`."""

    endpoint: str  # scheme://host[:port], no trailing slash; Port= already applied
    access_key: str
    connection_string: str  # as configured, for the SDK

    @property
    def host(self) -> str:
        """host[:port] of the endpoint, lower-cased: what the service sends as WebHook-Request-Origin."""
        return urlsplit(self.endpoint).netloc.lower()

    @property
    def hostname(self) -> str:
        """The endpoint's host name without a port, lower-cased."""
        return (urlsplit(self.endpoint).hostname or "").lower()

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"WebPubSubConnection(endpoint={self.endpoint!r}, access_key='***')"


@dataclass(frozen=True)
class PresenceBroadcast:
    """Where connected/disconnected notices go: to everyone, to one group, or nowhere."""

    mode: Literal["all", "group", "off"]
    group: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    web_pubsub: WebPubSubConnection
    hub: str
    storage_connection_string: str
    negotiate_allow_query_user_id: bool
    app_service_auth_enabled: bool
    extra_allowed_origins: tuple[str, ...]
    token_lifetime_minutes: int
    presence_broadcast: PresenceBroadcast
    messages_table: str
    messages_partitions: int
    presence_table: str
    dependency_timeout_s: float
    dependency_retries: int
    message_rate_limit: int

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Webhook origins accepted: the service host with and without port, plus configured extras."""
        return frozenset({self.web_pubsub.host, self.web_pubsub.hostname, *self.extra_allowed_origins})

    def __repr__(self) -> str:
        return f"Settings(hub={self.hub!r}, endpoint={self.web_pubsub.endpoint!r}, ...)"

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every setting; raise ConfigurationError naming the first bad one."""
        return cls(
            web_pubsub=parse_web_pubsub_connection_string(_required(env, "WebPubSubConnectionString")),
            hub=_hub(env),
            storage_connection_string=_required(env, "AzureWebJobsStorage"),
            negotiate_allow_query_user_id=_local_only(env, "NegotiateAllowQueryUserId"),
            app_service_auth_enabled=_bool(env, "WEBSITE_AUTH_ENABLED", default=False),
            extra_allowed_origins=_origins(env, "WebPubSubAllowedOrigins"),
            token_lifetime_minutes=_int(env, "WebPubSubTokenLifetimeMinutes", default=60, low=1, high=1440),
            presence_broadcast=_presence(env, "PresenceBroadcast"),
            messages_table=_table(env, "MessagesTableName", "messages"),
            messages_partitions=_int(env, "MessagesPartitions", default=1, low=1, high=MAX_PARTITIONS),
            presence_table=_table(env, "PresenceTableName", "presence"),
            dependency_timeout_s=float(_int(env, "DependencyTimeoutSeconds", default=10, low=1, high=120)),
            dependency_retries=_int(env, "DependencyRetries", default=2, low=0, high=5),
            message_rate_limit=_int(env, "MessageRateLimit", default=5, low=0, high=1000),
        )


def parse_web_pubsub_connection_string(value: str) -> WebPubSubConnection:
    """Parse `Endpoint=...;AccessKey=...;Version=1.0;[Port=...]` the way the service SDK does."""
    fields = _connection_fields(value)
    endpoint = fields.get("endpoint", "").rstrip("/")
    access_key = fields.get("accesskey", "")
    if not endpoint:
        raise ConfigurationError(f"{_CONNECTION} has no Endpoint=.")
    if not access_key:
        raise ConfigurationError(
            f"{_CONNECTION} has no AccessKey=; "
            "this app verifies event signatures and signs tokens with the key."
        )
    _check_endpoint(endpoint)
    if "port" in fields:
        endpoint = _with_port(endpoint, fields["port"])
    return WebPubSubConnection(endpoint=endpoint, access_key=access_key, connection_string=value)


_CONNECTION = "WebPubSubConnectionString"


def _connection_fields(value: str) -> dict[str, str]:
    """The key=value parts of a connection string, keys lower-cased."""
    fields: dict[str, str] = {}
    for segment in value.split(";"):
        segment = segment.strip()
        if not segment:
            continue
        key, sep, item = segment.partition("=")
        if not sep:
            raise ConfigurationError(
                f"{_CONNECTION} is malformed: every ';'-separated part must be key=value."
            )
        fields[key.strip().lower()] = item.strip()
    return fields


def _check_endpoint(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{_CONNECTION}: Endpoint must be an http:// or https:// URL with a host.")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigurationError(f"{_CONNECTION}: Endpoint must be scheme://host[:port] without a path.")


def _with_port(endpoint: str, port: str) -> str:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"{_CONNECTION}: Port must be a number between 1 and 65535.")
    if urlsplit(endpoint).port is not None:
        raise ConfigurationError(f"{_CONNECTION}: give the port either in Endpoint or as Port=, not both.")
    return f"{endpoint}:{int(port)}"


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"The setting {name} is missing; see docs/app.md for its meaning.")
    return value


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(f"The setting {name} must be true or false.")


def _int(env: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise ConfigurationError(f"The setting {name} must be a whole number.") from None
    if not low <= number <= high:
        raise ConfigurationError(f"The setting {name} must be between {low} and {high}.")
    return number


PRESENCE_RECONCILE_SCHEDULE = "0 */5 * * * *"


def presence_reconcile_schedule(env: Mapping[str, str]) -> str:
    """The reconciliation timer's NCRONTAB schedule (six fields, seconds first); the host validates it."""
    return env.get("PresenceReconcileSchedule", "").strip() or PRESENCE_RECONCILE_SCHEDULE


def _local_only(env: Mapping[str, str], name: str) -> bool:
    """A development switch: refused when the app runs in Azure (the platform sets WEBSITE_INSTANCE_ID)."""
    enabled = _bool(env, name, default=False)
    if enabled and env.get("WEBSITE_INSTANCE_ID"):
        raise ConfigurationError(
            f"The setting {name} is for local development only and is refused in Azure: with it anyone "
            "could pick any user. Remove it from the app settings (and turn on App Service Authentication)."
        )
    return enabled


def _hub(env: Mapping[str, str]) -> str:
    hub = env.get("WebPubSubHub", "").strip() or "chat"
    if not HUB_NAME.match(hub):
        raise ConfigurationError(
            "The setting WebPubSubHub must start with a letter and use letters, digits and _ (max 128)."
        )
    return hub


def _table(env: Mapping[str, str], name: str, default: str) -> str:
    table = env.get(name, "").strip() or default
    if not TABLE_NAME.match(table) or table.lower() in RESERVED_TABLE_NAMES:
        raise ConfigurationError(
            f"The setting {name} must be 3-63 letters or digits, starting with a letter, and not 'tables'."
        )
    return table


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated hosts or URLs; stored as lower-cased host[:port]."""
    origins: list[str] = []
    for item in env.get(name, "").replace(" ", ",").split(","):
        item = item.strip()
        if not item:
            continue
        host = urlsplit(item).netloc if "://" in item else item
        if not host or "/" in host or "*" in host:
            raise ConfigurationError(f"The setting {name} must list host names (or URLs), comma-separated.")
        origins.append(host.lower())
    return tuple(origins)


def _presence(env: Mapping[str, str], name: str) -> PresenceBroadcast:
    raw = env.get(name, "").strip() or "all"
    if raw.lower() == "all":
        return PresenceBroadcast("all")
    if raw.lower() == "off":
        return PresenceBroadcast("off")
    prefix, sep, group = raw.partition(":")
    if prefix.lower() == "group" and sep and group.strip():
        return PresenceBroadcast("group", group.strip())
    raise ConfigurationError(f"The setting {name} must be all, off, or group:<name>.")
