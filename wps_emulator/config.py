"""Emulator settings: CLI flags, with `WPS_EMULATOR_*` environment variables and a JSON file as fallbacks.

Precedence, highest first: command line, environment, JSON file (`--config` / `WPS_EMULATOR_CONFIG`),
defaults. Hub event handlers given on the command line or in the environment replace the JSON file's
handlers for the same hub; other hubs from the file are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from .hosts import is_loopback
from .names import InvalidName, check_hub_name

DEFAULT_PORT = 8080
DEFAULT_ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
SYSTEM_EVENTS = ("connect", "connected", "disconnected")
DEFAULT_UPSTREAM_TIMEOUT = 100.0
ENV_PREFIX = "WPS_EMULATOR_"
ANY_HUB = "*"
PUBLIC_CLOUD_AUTHORITY = "https://login.microsoftonline.com"  # + /<tenant>: Entra's public cloud


class ConfigError(ValueError):
    """The settings are invalid; the message says which one and why."""


@dataclass(frozen=True)
class EventHandler:
    """One event handler of a hub: where events go and which events it takes."""

    url_template: str
    user_events: str = "*"  # "*", one name, or a comma list; "" takes no user events
    system_events: tuple[str, ...] = SYSTEM_EVENTS

    def takes_system_event(self, event: str) -> bool:
        return event.casefold() in (e.casefold() for e in self.system_events)

    def takes_user_event(self, event: str) -> bool:
        names = [n.strip().casefold() for n in self.user_events.split(",") if n.strip()]
        return "*" in names or event.casefold() in names

    def url(self, hub: str, event: str) -> str:
        """The upstream URL for an event: `{hub}` and `{event}` replaced, URL-escaped."""
        return self.url_template.replace("{hub}", quote(hub, safe="")).replace(
            "{event}", quote(event, safe="")
        )


@dataclass(frozen=True)
class HubSettings:
    """Ordered event handlers of one hub; the first one that takes an event wins."""

    name: str
    handlers: tuple[EventHandler, ...] = ()

    def handler_for(self, event: str, *, system: bool) -> EventHandler | None:
        for handler in self.handlers:
            if handler.takes_system_event(event) if system else handler.takes_user_event(event):
                return handler
        return None


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    access_key: str = DEFAULT_ACCESS_KEY
    public_endpoint: str = ""  # empty: http://localhost:<port>
    hubs: tuple[HubSettings, ...] = ()
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    retry_delays: tuple[float, ...] = (1.0, 3.0, 5.0)
    test_hooks: bool = False
    log_level: str = "INFO"
    allowed_hosts: tuple[str, ...] = ()  # besides loopback names and the public endpoint's host
    tls_certificate: str = ""  # PEM file; with tls_key, the emulator serves https and wss
    tls_key: str = ""
    entra_tenant: str = ""  # a tenant id: REST calls may also carry that tenant's Entra tokens
    entra_authority: str = ""  # empty: the public cloud's, https://login.microsoftonline.com/<tenant>

    @property
    def tls(self) -> bool:
        """True when the emulator serves TLS (https and wss)."""
        return bool(self.tls_certificate)

    @property
    def endpoint(self) -> str:
        """The public endpoint, e.g. `http://localhost:8080`, without a trailing slash."""
        scheme = "https" if self.tls else "http"
        return (self.public_endpoint or f"{scheme}://localhost:{self.port}").rstrip("/")

    @property
    def entra_authority_url(self) -> str | None:
        """The authority whose tokens the REST API accepts (`<base>/<tenant>`); None when Entra is off."""
        if not self.entra_tenant:
            return None
        return (self.entra_authority or f"{PUBLIC_CLOUD_AUTHORITY}/{self.entra_tenant}").rstrip("/")

    @property
    def origin(self) -> str:
        """What goes in `WebHook-Request-Origin`: host[:port] of the public endpoint."""
        return urlsplit(self.endpoint).netloc

    @property
    def connection_string(self) -> str:
        return f"Endpoint={self.endpoint};AccessKey={self.access_key};Version=1.0;"

    def hub_settings(self, hub: str) -> HubSettings:
        """The settings of a hub (names compare case-insensitively); `*` is the fallback hub."""
        fallback = HubSettings(hub)
        for settings in self.hubs:
            if settings.name.casefold() == hub.casefold():
                return settings
            if settings.name == ANY_HUB:
                fallback = settings
        return fallback


# --- command line ------------------------------------------------------------------------------------


class _HubAction(argparse.Action):
    """`--hub NAME` opens a hub section; the following handler flags belong to it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sections = getattr(namespace, "hub_sections", None) or []
        sections.append({"name": values, "handlers": []})
        namespace.hub_sections = sections


class _HandlerAction(argparse.Action):
    """`--upstream URL` adds a handler to the current hub; `--user-events` / `--system-events` edit it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sections: list[dict[str, Any]] = getattr(namespace, "hub_sections", None) or []
        if not sections:
            parser.error(f"{option_string} must follow --hub NAME")
        handlers = sections[-1]["handlers"]
        if self.dest == "upstream":
            handlers.append({"urlTemplate": values})
            return
        if not handlers:
            parser.error(f"{option_string} must follow --upstream URL")
        key = "userEventPattern" if self.dest == "user_events" else "systemEvents"
        handlers[-1][key] = values


def program_name(argv0: str | None = None) -> str:
    """How we were started, for `usage:` lines: `wps-emulator` (the script) or `python -m wps_emulator`."""
    name = Path(sys.argv[0] if argv0 is None else argv0).name
    return "python -m wps_emulator" if name in ("__main__.py", "") else name


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    # One flag after another, as `--help` lists them: long, but a list read top to bottom, not logic.
    parser = argparse.ArgumentParser(
        prog=prog or program_name(),
        description="Local Azure Web PubSub service for development and tests.",
        epilog="Every flag also reads WPS_EMULATOR_<FLAG> (e.g. WPS_EMULATOR_PORT); --config reads JSON.",
    )
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"listen port (default {DEFAULT_PORT})")
    parser.add_argument("--access-key", help="the access key clients and REST callers sign with")
    parser.add_argument(
        "--public-endpoint",
        help="endpoint in the printed connection string and WebHook-Request-Origin "
        "(default http://localhost:<port>)",
    )
    parser.add_argument("--config", help="JSON settings file")
    parser.add_argument("--hub", action=_HubAction, help="start the event handler settings of a hub")
    parser.add_argument(
        "--upstream", action=_HandlerAction, help="event handler URL template ({hub}, {event})"
    )
    parser.add_argument(
        "--user-events", action=_HandlerAction, help="'*', a name or a comma list (default *)"
    )
    parser.add_argument(
        "--system-events", action=_HandlerAction, help="comma list (default connect,connected,disconnected)"
    )
    parser.add_argument("--upstream-timeout", type=float, help="seconds per upstream request (default 100)")
    parser.add_argument(
        "--upstream-retry-delays",
        help="seconds before each retry of a failed upstream request (default 1,3,5; '' = no retries)",
    )
    parser.add_argument(
        "--enable-test-hooks",
        action="store_true",
        default=None,
        help="expose /_emulator/... routes that simulate network faults (tests only)",
    )
    parser.add_argument(
        "--allowed-hosts",
        help="comma list of host names clients and web pages may use besides localhost, 127.0.0.1, [::1] "
        "and the public endpoint's host ('*' = any)",
    )
    parser.add_argument("--tls-cert", help="PEM certificate (chain): serve https and wss (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--entra-tenant",
        help="tenant id whose Microsoft Entra tokens the REST API accepts besides the access key's",
    )
    parser.add_argument(
        "--entra-authority",
        help=f"that tenant's authority URL (default {PUBLIC_CLOUD_AUTHORITY}/<tenant>)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO (default), WARNING")
    return parser


# --- where each setting comes from ------------------------------------------------------------------

_FILE_KEYS = (
    "host",
    "port",
    "accessKey",
    "publicEndpoint",
    "hubs",
    "upstreamTimeout",
    "upstreamRetryDelays",
    "enableTestHooks",
    "logLevel",
    "allowedHosts",
    "tlsCert",
    "tlsKey",
    "entraTenant",
    "entraAuthority",
)


@dataclass(frozen=True)
class _Found:
    """A setting's value and where it came from (named in error messages)."""

    value: Any
    where: str  # "--port", "WPS_EMULATOR_PORT", "port in emulator.json", "the default"
    rank: int  # 3 command line, 2 environment, 1 JSON file, 0 default


@dataclass(frozen=True)
class _Sources:
    """The command line, the environment and the JSON file, most specific first."""

    args: argparse.Namespace
    environ: Mapping[str, str]
    file: Mapping[str, Any]
    file_name: str

    def env(self, name: str) -> str | None:
        value = self.environ.get(ENV_PREFIX + name)
        return value if value not in (None, "") else None

    def find(self, flag: str, default: Any) -> _Found:
        """The setting behind `--flag` (its variable is WPS_EMULATOR_FLAG, its file key flagInCamelCase)."""
        dest = flag.replace("-", "_")
        env_name = dest.upper()
        key = _camel(dest)
        candidates = (
            (getattr(self.args, dest, None), f"--{flag}", 3),
            (self.env(env_name), ENV_PREFIX + env_name, 2),
            (self.file.get(key), f"{key} in {self.file_name}", 1),
        )
        for value, where, rank in candidates:
            if value is not None:
                return _Found(value, where, rank)
        return _Found(default, "the default", 0)


def _camel(dest: str) -> str:
    first, *rest = dest.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _read_sources(args: argparse.Namespace, environ: Mapping[str, str]) -> _Sources:
    empty = _Sources(args, environ, {}, "")
    path = args.config or empty.env("CONFIG")
    if not path:
        return empty
    return _Sources(args, environ, _read_json(Path(path)), Path(path).name)


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, *, prog: str | None = None
) -> EmulatorConfig:
    """Settings from the command line, the environment and an optional JSON file."""
    args = build_parser(prog).parse_args(argv)
    sources = _read_sources(args, os.environ if environ is None else environ)
    port = sources.find("port", DEFAULT_PORT)
    certificate, key = _tls_files(sources.find("tls-cert", ""), sources.find("tls-key", ""))
    tenant, authority = _entra(sources.find("entra-tenant", ""), sources.find("entra-authority", ""))
    config = EmulatorConfig(
        host=str(sources.find("host", "127.0.0.1").value),
        port=_port_number(port),
        access_key=str(sources.find("access-key", DEFAULT_ACCESS_KEY).value),
        public_endpoint=_public_endpoint(sources.find("public-endpoint", ""), port),
        hubs=_hubs(args, sources),
        upstream_timeout=_seconds(sources.find("upstream-timeout", DEFAULT_UPSTREAM_TIMEOUT)),
        retry_delays=_retry_delays(sources.find("upstream-retry-delays", "1,3,5")),
        test_hooks=_switch(sources.find("enable-test-hooks", False)),
        log_level=str(sources.find("log-level", "INFO").value).upper(),
        allowed_hosts=_host_names(sources.find("allowed-hosts", ())),
        tls_certificate=certificate,
        tls_key=key,
        entra_tenant=tenant,
        entra_authority=authority,
    )
    validate(config)
    return config


# --- reading each kind of value ----------------------------------------------------------------------


def _port_number(found: _Found) -> int:
    value = found.value
    try:
        port = int(value) if not isinstance(value, bool) and str(value).strip().isdigit() else -1
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(f"{found.where}: {value!r} is not a port number; use a number from 1 to 65535")
    return port


def _public_endpoint(found: _Found, port: _Found) -> str:
    """The public endpoint as given, except one that names this machine and comes from a less specific
    place than the port (a JSON file, then --port): it follows the port, so the printed connection
    string names the port the emulator listens on."""
    endpoint = str(found.value)
    if not endpoint or found.rank >= port.rank:
        return endpoint
    parts = urlsplit(endpoint)
    try:
        host = parts.hostname
    except ValueError:
        return endpoint  # validate() says what is wrong with it
    if host is None or not is_loopback(host):
        return endpoint
    netloc = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{netloc}:{_port_number(port)}"))


def _seconds(found: _Found) -> float:
    try:
        return float(found.value)
    except (TypeError, ValueError):
        raise ConfigError(f"{found.where}: {found.value!r} is not a number of seconds") from None


def _retry_delays(found: _Found) -> tuple[float, ...]:
    value = found.value
    try:
        items = value.split(",") if isinstance(value, str) else value
        return tuple(float(d) for d in items if str(d).strip())
    except (TypeError, ValueError):
        raise ConfigError(
            f"{found.where}: retry delays must be numbers of seconds, e.g. 1,3,5, not {value!r}"
        ) from None


def _host_names(found: _Found) -> tuple[str, ...]:
    value = found.value
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{found.where}: expected host names, e.g. myhost.local,192.168.1.20")
    names = tuple(i.strip() for i in items if i.strip())
    for name in names:
        if "/" in name or name.count(":") == 1:
            raise ConfigError(
                f"{found.where}: {name!r} is not a host name; give names without scheme or port, "
                "e.g. myhost.local (any port is accepted)"
            )
    return names


def _tls_files(certificate: _Found, key: _Found) -> tuple[str, str]:
    """The certificate and key files, which go together; each must be a file that exists."""
    if bool(certificate.value) != bool(key.value):
        given, missing = (certificate, "--tls-key") if certificate.value else (key, "--tls-cert")
        raise ConfigError(
            f"{given.where} needs {missing} too: give the certificate and its private key (PEM files) "
            "to serve https and wss, or neither to serve http and ws"
        )
    for found in (certificate, key):
        if found.value and not Path(str(found.value)).is_file():
            raise ConfigError(f"{found.where}: {found.value!r} is not a file; give the path of a PEM file")
    return str(certificate.value), str(key.value)


def _entra(tenant: _Found, authority: _Found) -> tuple[str, str]:
    """The Entra tenant id (a GUID) and its authority URL (https, or http on this machine)."""
    if authority.value and not tenant.value:
        raise ConfigError(
            f"{authority.where} needs --entra-tenant (WPS_EMULATOR_ENTRA_TENANT) too: the tenant whose "
            "tokens the REST API accepts"
        )
    if not tenant.value:
        return "", ""
    text = str(tenant.value).strip()
    try:
        uuid.UUID(text)
    except ValueError:
        raise ConfigError(
            f"{tenant.where}: {text!r} is not a tenant id; give the GUID that "
            "`az account show --query tenantId -o tsv` prints"
        ) from None
    return text.lower(), _authority(authority)


def _authority(found: _Found) -> str:
    url = str(found.value).strip().rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        host = parts.hostname
    except ValueError:
        host = None
    local_http = parts.scheme == "http" and host is not None and is_loopback(host)
    if (parts.scheme != "https" and not local_http) or not host or parts.path in ("", "/") or parts.query:
        raise ConfigError(
            f"{found.where}: {url!r} is not a tenant's authority URL; give one such as "
            f"{PUBLIC_CLOUD_AUTHORITY}/<tenant id> (https, or http on this machine)"
        )
    return url


def _switch(found: _Found) -> bool:
    value = found.value
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{found.where}: {value!r} is not a switch; use true or false")


def _hubs(args: argparse.Namespace, sources: _Sources) -> tuple[HubSettings, ...]:
    """The file's hubs, then the environment's hub, then the command line's, each replacing its name."""
    hubs = {h.name.casefold(): h for h in _hubs_from_json(sources.file.get("hubs", {}))}
    env_hub = _hub_from_environment(sources)
    if env_hub is not None:
        hubs[env_hub.name.casefold()] = env_hub
    for section in getattr(args, "hub_sections", None) or []:
        hubs[section["name"].casefold()] = _hub_from_json(
            section["name"], {"eventHandlers": section["handlers"]}
        )
    return tuple(hubs.values())


def _hub_from_environment(sources: _Sources) -> HubSettings | None:
    name, url = sources.env("HUB"), sources.env("UPSTREAM")
    if name is None and url is None:
        return None
    if name is None or url is None:
        raise ConfigError(
            f"{ENV_PREFIX}HUB and {ENV_PREFIX}UPSTREAM go together: set both (or neither) to give one hub "
            "an event handler"
        )
    handler = {"urlTemplate": url}
    if (user_events := sources.env("USER_EVENTS")) is not None:
        handler["userEventPattern"] = user_events
    if (system_events := sources.env("SYSTEM_EVENTS")) is not None:
        handler["systemEvents"] = system_events
    return _hub_from_json(name, {"eventHandlers": [handler]})


# --- validation --------------------------------------------------------------------------------------


def validate(config: EmulatorConfig) -> None:
    """Raise ConfigError naming the first invalid setting."""
    key = config.access_key
    if len(key.encode()) < 32 or key != key.strip() or ";" in key or any(ord(c) < 32 for c in key):
        raise ConfigError(
            "access key must be at least 32 bytes, without ';', control characters or surrounding spaces"
        )
    if not 0 < config.port < 65536:
        raise ConfigError(f"port {config.port} is out of range 1-65535")
    if config.upstream_timeout <= 0:
        raise ConfigError("upstream timeout must be positive")
    endpoint = urlsplit(config.endpoint)
    if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
        raise ConfigError(
            f"public endpoint {config.endpoint!r} must be an http(s) URL such as http://localhost:8080"
        )
    if config.tls and endpoint.scheme != "https":
        raise ConfigError(
            f"public endpoint {config.endpoint!r} must be https:// when the emulator serves TLS "
            "(--tls-cert): clients reach it with https and wss"
        )
    for hub in config.hubs:
        _validate_hub(hub)


def _validate_hub(hub: HubSettings) -> None:
    if hub.name != ANY_HUB:
        try:
            check_hub_name(hub.name)
        except InvalidName as exc:
            raise ConfigError(str(exc)) from None
    for handler in hub.handlers:
        url = urlsplit(handler.url_template)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(f"hub {hub.name}: upstream {handler.url_template!r} must be an http(s) URL")
        if "{" in url.netloc:
            raise ConfigError(f"hub {hub.name}: {{hub}} and {{event}} are not allowed in the upstream host")
        unknown = [e for e in handler.system_events if e.casefold() not in SYSTEM_EVENTS]
        if unknown:
            raise ConfigError(
                f"hub {hub.name}: unknown system events {unknown}; use {', '.join(SYSTEM_EVENTS)}"
            )


# --- the JSON file -----------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    unknown = set(data) - set(_FILE_KEYS)
    if unknown:
        raise ConfigError(f"config file {path}: unknown keys {sorted(unknown)}; known: {sorted(_FILE_KEYS)}")
    return data


def _hubs_from_json(hubs: Any) -> list[HubSettings]:
    if not isinstance(hubs, dict):
        raise ConfigError('"hubs" must be an object: {"chat": {"eventHandlers": [...]}}')
    return [_hub_from_json(name, value) for name, value in hubs.items()]


def _hub_from_json(name: str, value: Any) -> HubSettings:
    if not isinstance(value, dict) or not isinstance(value.get("eventHandlers", []), list):
        raise ConfigError(f'hub {name}: expected {{"eventHandlers": [{{"urlTemplate": ...}}]}}')
    handlers = []
    for item in value.get("eventHandlers", []):
        if not isinstance(item, dict) or not isinstance(item.get("urlTemplate"), str):
            raise ConfigError(f"hub {name}: every event handler needs a urlTemplate string")
        handlers.append(
            EventHandler(
                url_template=item["urlTemplate"],
                user_events=str(item.get("userEventPattern", "*")),
                system_events=_event_list(item.get("systemEvents", list(SYSTEM_EVENTS))),
            )
        )
    return HubSettings(name=name, handlers=tuple(handlers))


def _event_list(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError("systemEvents must be a list or a comma-separated string")
    return tuple(str(e).strip() for e in items if str(e).strip())


__all__ = [
    "ANY_HUB",
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_PORT",
    "PUBLIC_CLOUD_AUTHORITY",
    "ConfigError",
    "EmulatorConfig",
    "EventHandler",
    "HubSettings",
    "load_config",
    "program_name",
]
