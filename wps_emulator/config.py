"""Emulator settings: CLI flags, with `WPS_EMULATOR_*` environment variables and a JSON file as fallbacks.

Precedence, highest first: command line, environment, JSON file (`--config` / `WPS_EMULATOR_CONFIG`),
defaults. Hub event handlers given on the command line or in the environment replace the JSON file's
handlers for the same hub; other hubs from the file are kept.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .names import InvalidName, check_hub_name

DEFAULT_PORT = 8080
DEFAULT_ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
SYSTEM_EVENTS = ("connect", "connected", "disconnected")
DEFAULT_UPSTREAM_TIMEOUT = 100.0
ENV_PREFIX = "WPS_EMULATOR_"
ANY_HUB = "*"


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

    @property
    def endpoint(self) -> str:
        """The public endpoint, e.g. `http://localhost:8080`, without a trailing slash."""
        return (self.public_endpoint or f"http://localhost:{self.port}").rstrip("/")

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wps_emulator",
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
    parser.add_argument("--log-level", help="DEBUG, INFO (default), WARNING")
    return parser


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> EmulatorConfig:
    """Settings from the command line, the environment and an optional JSON file."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)

    def env(name: str) -> str | None:
        value = environ.get(ENV_PREFIX + name)
        return value if value not in (None, "") else None

    config_path = args.config or env("CONFIG")
    file: dict[str, Any] = _read_json(Path(config_path)) if config_path else {}

    def pick(cli: Any, env_name: str, file_key: str, default: Any) -> Any:
        for value in (cli, env(env_name), file.get(file_key)):
            if value is not None:
                return value
        return default

    hubs = {h.name.casefold(): h for h in _hubs_from_json(file.get("hubs", {}))}
    env_hub = env("HUB")
    if env_hub and env("UPSTREAM"):
        handler = {"urlTemplate": env("UPSTREAM")}
        if env("USER_EVENTS") is not None:
            handler["userEventPattern"] = env("USER_EVENTS")
        if env("SYSTEM_EVENTS") is not None:
            handler["systemEvents"] = env("SYSTEM_EVENTS")
        hubs[env_hub.casefold()] = _hub_from_json(env_hub, {"eventHandlers": [handler]})
    for section in getattr(args, "hub_sections", None) or []:
        hubs[section["name"].casefold()] = _hub_from_json(
            section["name"], {"eventHandlers": section["handlers"]}
        )

    try:
        port = int(pick(args.port, "PORT", "port", DEFAULT_PORT))
        timeout = float(
            pick(args.upstream_timeout, "UPSTREAM_TIMEOUT", "upstreamTimeout", DEFAULT_UPSTREAM_TIMEOUT)
        )
    except ValueError as exc:
        raise ConfigError(f"port and upstream timeout must be numbers: {exc}") from exc
    delays = pick(args.upstream_retry_delays, "UPSTREAM_RETRY_DELAYS", "upstreamRetryDelays", "1,3,5")
    try:
        items = delays.split(",") if isinstance(delays, str) else delays
        retry_delays = tuple(float(d) for d in items if str(d).strip())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"upstream retry delays must be numbers of seconds, e.g. 1,3,5: {exc}") from exc
    test_hooks = pick(args.enable_test_hooks, "ENABLE_TEST_HOOKS", "enableTestHooks", False)
    config = EmulatorConfig(
        host=str(pick(args.host, "HOST", "host", "127.0.0.1")),
        port=port,
        access_key=str(pick(args.access_key, "ACCESS_KEY", "accessKey", DEFAULT_ACCESS_KEY)),
        public_endpoint=str(pick(args.public_endpoint, "PUBLIC_ENDPOINT", "publicEndpoint", "")),
        hubs=tuple(hubs.values()),
        upstream_timeout=timeout,
        retry_delays=retry_delays,
        test_hooks=test_hooks
        if isinstance(test_hooks, bool)
        else str(test_hooks).lower() in ("1", "true", "yes"),
        log_level=str(pick(args.log_level, "LOG_LEVEL", "logLevel", "INFO")).upper(),
    )
    validate(config)
    return config


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
    for hub in config.hubs:
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
                raise ConfigError(
                    f"hub {hub.name}: {{hub}} and {{event}} are not allowed in the upstream host"
                )
            unknown = [e for e in handler.system_events if e.casefold() not in SYSTEM_EVENTS]
            if unknown:
                raise ConfigError(
                    f"hub {hub.name}: unknown system events {unknown}; use {', '.join(SYSTEM_EVENTS)}"
                )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    known = {
        "host",
        "port",
        "accessKey",
        "publicEndpoint",
        "hubs",
        "upstreamTimeout",
        "upstreamRetryDelays",
        "enableTestHooks",
        "logLevel",
    }
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"config file {path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
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
    "ConfigError",
    "EmulatorConfig",
    "EventHandler",
    "HubSettings",
    "field",
    "load_config",
]
