"""Typed settings, read once from the environment (app settings in Azure, local.settings.json locally).

`Settings.from_environ` validates everything and raises `ConfigurationError` naming the setting that is
missing or malformed; it never echoes a secret value.

Each connection comes in two forms: with a key (`WebPubSubConnectionString`, `AzureWebJobsStorage`) or
keyless, reached with the app's Entra identity (`WebPubSubEndpoint`, `AzureWebJobsStorage__accountName` or
`__tableServiceUri`). The webhook is authenticated by the access key's signature, by Entra bearer tokens
(`WebPubSubUpstreamAudience` and the tenant), or by both.
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
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PUBLIC_CLOUD_AUTHORITY = "https://login.microsoftonline.com"
STORAGE_CONNECTION = "AzureWebJobsStorage"


@dataclass(frozen=True)
class WebPubSubConnection:
    """The service: from `WebPubSubConnectionString` (with its key) or `WebPubSubEndpoint` (keyless)."""

    endpoint: str  # scheme://host[:port], no trailing slash; Port= already applied
    access_key: str | None  # None: keyless, the app's Entra identity calls the REST API and issues tokens
    connection_string: str | None  # as configured, for the SDK; None when keyless

    @property
    def keyless(self) -> bool:
        return self.access_key is None

    @property
    def host(self) -> str:
        """host[:port] of the endpoint, lower-cased: what the service sends as WebHook-Request-Origin."""
        return urlsplit(self.endpoint).netloc.lower()

    @property
    def hostname(self) -> str:
        """The endpoint's host name without a port, lower-cased."""
        return (urlsplit(self.endpoint).hostname or "").lower()

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        key = "None" if self.access_key is None else "'***'"
        return f"WebPubSubConnection(endpoint={self.endpoint!r}, access_key={key})"


@dataclass(frozen=True)
class StorageAccount:
    """Table storage: a connection string (`AzureWebJobsStorage`), or a table endpoint reached by identity.

    The identity follows Functions' identity-based connections: `AzureWebJobsStorage__credential` =
    `managedidentity` (with `__clientId` for a user-assigned identity) asks for a managed identity; without
    it, the app uses its managed identity in Azure and the developer's identity elsewhere.
    """

    connection_string: str | None
    table_endpoint: str | None = None
    managed_identity: bool = False
    client_id: str | None = None

    def __repr__(self) -> str:  # a connection string may hold the account key
        shown = "***" if self.connection_string else repr(self.table_endpoint)
        return f"StorageAccount({shown})"


@dataclass(frozen=True)
class UpstreamAuth:
    """Entra bearer tokens on the webhook: who may call it (`WebPubSubUpstream*` settings)."""

    audience: str
    tenant_id: str
    authority: str  # scheme://host/<tenant>, no trailing slash
    allowed_callers: frozenset[str]  # object or client ids, lower-cased; empty: any caller of the tenant

    @property
    def public_cloud(self) -> bool:
        """True when the authority is the public cloud's, whose two issuers are known without asking it."""
        return self.authority == f"{PUBLIC_CLOUD_AUTHORITY}/{self.tenant_id}"


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
    storage: StorageAccount
    upstream_auth: UpstreamAuth | None
    in_azure: bool  # the platform sets WEBSITE_INSTANCE_ID
    identity_client_id: str | None  # AZURE_CLIENT_ID: a user-assigned identity (storage: unless __clientId)
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
    def storage_connection_string(self) -> str | None:
        """`AzureWebJobsStorage` when storage is reached with a connection string, else None."""
        return self.storage.connection_string

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
            web_pubsub=_web_pubsub(env),
            hub=_hub(env),
            storage=_storage(env),
            upstream_auth=_upstream_auth(env),
            in_azure=bool(env.get("WEBSITE_INSTANCE_ID")),
            identity_client_id=_guid(env, "AZURE_CLIENT_ID"),
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


def _web_pubsub(env: Mapping[str, str]) -> WebPubSubConnection:
    """The service from exactly one of WebPubSubConnectionString (with a key) and WebPubSubEndpoint."""
    connection_string = env.get(_CONNECTION, "").strip()
    endpoint = env.get(_ENDPOINT, "").strip()
    if connection_string and endpoint:
        raise ConfigurationError(
            f"Both {_CONNECTION} and {_ENDPOINT} are set; set one: the connection string to use its access "
            f"key, or {_ENDPOINT} to reach the service with the app's identity (keyless)."
        )
    if endpoint:
        return parse_web_pubsub_endpoint(endpoint)
    if connection_string:
        return parse_web_pubsub_connection_string(connection_string)
    raise ConfigurationError(
        f"The setting {_CONNECTION} (or, keyless, {_ENDPOINT}) is missing; see docs/app.md for their meaning."
    )


def parse_web_pubsub_endpoint(value: str) -> WebPubSubConnection:
    """`WebPubSubEndpoint`: https://<name>.webpubsub.azure.com, reached with the app's Entra identity."""
    endpoint = value.strip().rstrip("/")
    _check_endpoint(endpoint, _ENDPOINT)
    return WebPubSubConnection(endpoint=endpoint, access_key=None, connection_string=None)


def parse_web_pubsub_connection_string(value: str) -> WebPubSubConnection:
    """Parse `Endpoint=...;AccessKey=...;Version=1.0;[Port=...]` the way the service SDK does."""
    fields = _connection_fields(value)
    endpoint = fields.get("endpoint", "").rstrip("/")
    access_key = fields.get("accesskey", "")
    if not endpoint:
        raise ConfigurationError(f"{_CONNECTION} has no Endpoint=.")
    if not access_key:
        raise ConfigurationError(
            f"{_CONNECTION} has no AccessKey=; this app verifies event signatures and signs tokens with the "
            f"key. Without a key, set {_ENDPOINT} instead (the app then uses its Entra identity)."
        )
    _check_endpoint(endpoint, _CONNECTION)
    if "port" in fields:
        endpoint = _with_port(endpoint, fields["port"])
    return WebPubSubConnection(endpoint=endpoint, access_key=access_key, connection_string=value)


_CONNECTION = "WebPubSubConnectionString"
_ENDPOINT = "WebPubSubEndpoint"


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


def _check_endpoint(endpoint: str, name: str) -> None:
    parts = urlsplit(endpoint)
    what = "Endpoint" if name == _CONNECTION else "it"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name}: {what} must be an http:// or https:// URL with a host.")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigurationError(f"{name}: {what} must be scheme://host[:port] without a path.")


def _with_port(endpoint: str, port: str) -> str:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"{_CONNECTION}: Port must be a number between 1 and 65535.")
    if urlsplit(endpoint).port is not None:
        raise ConfigurationError(f"{_CONNECTION}: give the port either in Endpoint or as Port=, not both.")
    return f"{endpoint}:{int(port)}"


def _storage(env: Mapping[str, str]) -> StorageAccount:
    """AzureWebJobsStorage (a connection string; it wins, as for the Functions host), or its identity form."""
    connection_string = env.get(STORAGE_CONNECTION, "").strip()
    if connection_string:
        return StorageAccount(connection_string=connection_string)
    credential = env.get(f"{STORAGE_CONNECTION}__credential", "").strip().lower()
    if credential not in ("", "managedidentity"):
        raise ConfigurationError(
            f"The setting {STORAGE_CONNECTION}__credential must be managedidentity (or be left out)."
        )
    return StorageAccount(
        connection_string=None,
        table_endpoint=_table_endpoint(env),
        managed_identity=credential == "managedidentity",
        client_id=_guid(env, f"{STORAGE_CONNECTION}__clientId"),
    )


def _table_endpoint(env: Mapping[str, str]) -> str:
    """The table service URL: __tableServiceUri as given, or the public cloud's URL of __accountName."""
    service_uri = env.get(f"{STORAGE_CONNECTION}__tableServiceUri", "").strip().rstrip("/")
    if service_uri:
        return _service_uri(service_uri, f"{STORAGE_CONNECTION}__tableServiceUri")
    account_name = env.get(f"{STORAGE_CONNECTION}__accountName", "").strip()
    if not account_name:
        raise ConfigurationError(
            f"The setting {STORAGE_CONNECTION} (or, keyless, {STORAGE_CONNECTION}__accountName or "
            f"{STORAGE_CONNECTION}__tableServiceUri) is missing; see docs/app.md for their meaning."
        )
    if not re.fullmatch(r"[a-z0-9]{3,24}", account_name):
        raise ConfigurationError(
            f"The setting {STORAGE_CONNECTION}__accountName must be a storage account name "
            "(3-24 lower-case letters and digits)."
        )
    return f"https://{account_name}.table.core.windows.net"


def _service_uri(value: str, name: str) -> str:
    """An https:// service URL (http:// only on this machine, for a local emulator)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigurationError(
            f"The setting {name} must be an https:// URL, e.g. https://<account>.table.core.windows.net."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(f"The setting {name} must use https:// (http:// only for this machine).")
    return value


_UPSTREAM = "WebPubSubUpstream"


def _upstream_auth(env: Mapping[str, str]) -> UpstreamAuth | None:
    """Entra bearer tokens on the webhook: on when WebPubSubUpstreamAudience is set."""
    audience = env.get(f"{_UPSTREAM}Audience", "").strip()
    others = [
        name
        for name in ("TenantId", "Authority", "AllowedCallers")
        if env.get(f"{_UPSTREAM}{name}", "").strip()
    ]
    if not audience:
        if others:
            raise ConfigurationError(
                f"The setting {_UPSTREAM}Audience is missing: {_UPSTREAM}{others[0]} is set, and the webhook "
                "checks Entra tokens only against an audience (the hub's event handler resource)."
            )
        return None
    tenant_id = _guid(env, f"{_UPSTREAM}TenantId")
    if tenant_id is None:
        raise ConfigurationError(
            f"The setting {_UPSTREAM}TenantId is missing: with {_UPSTREAM}Audience set, the app needs the "
            "tenant (a GUID, as `az account show --query tenantId` prints) whose tokens it accepts."
        )
    return UpstreamAuth(
        audience=audience,
        tenant_id=tenant_id,
        authority=_authority(env, tenant_id),
        allowed_callers=frozenset(_guids(env, f"{_UPSTREAM}AllowedCallers")),
    )


def _authority(env: Mapping[str, str], tenant_id: str) -> str:
    name = f"{_UPSTREAM}Authority"
    raw = env.get(name, "").strip().rstrip("/")
    if not raw:
        return f"{PUBLIC_CLOUD_AUTHORITY}/{tenant_id}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path in ("", "/") or parts.query:
        raise ConfigurationError(
            f"The setting {name} must be the tenant's authority URL, e.g. "
            "https://login.microsoftonline.us/<tenant id>."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(f"The setting {name} must use https:// (http:// only for this machine).")
    return raw


def _is_loopback(hostname: str) -> bool:
    return hostname.lower() in LOOPBACK_HOSTS


def _guid(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return _canonical_guid(raw)
    except ValueError:
        raise ConfigurationError(f"The setting {name} must be a GUID (an Entra id).") from None


def _canonical_guid(value: str) -> str:
    """A GUID in canonical form (lower case, hyphens); ValueError when `value` is not one."""
    # Imported here: only the Entra settings need it, and importing uuid costs a cold start about 2 ms.
    from uuid import UUID

    return str(UUID(value))


def _guids(env: Mapping[str, str], name: str) -> list[str]:
    """Comma- or space-separated GUIDs, lower-cased."""
    found = []
    for item in env.get(name, "").replace(",", " ").split():
        try:
            found.append(_canonical_guid(item))
        except ValueError:
            raise ConfigurationError(
                f"The setting {name} must list GUIDs (object or client ids), comma-separated."
            ) from None
    return found


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
