"""`local.settings.json` and `host.json`: the two files Core Tools reads before starting the app."""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ROUTE_PREFIX = "api"


class SettingsFileError(ValueError):
    """A settings file exists but cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class LocalSettings:
    """What the dev host uses from `local.settings.json`."""

    values: dict[str, str] = field(default_factory=dict)
    local_http_port: int | None = None
    path: Path | None = None


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SettingsFileError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsFileError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(document, dict):
        raise SettingsFileError(f"{path}: expected a JSON object at the top level")
    return document


def _setting_text(path: Path, name: str, value: Any) -> str:
    # Core Tools wants strings; numbers and booleans are common hand edits, so accept them as text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise SettingsFileError(f'{path}: "Values"."{name}" must be a string, got {type(value).__name__}')


def read_local_settings(app_dir: Path) -> LocalSettings:
    """Read `<app_dir>/local.settings.json`; an empty result if the file does not exist."""
    path = app_dir / "local.settings.json"
    if not path.exists():
        return LocalSettings()
    document = _read_json_object(path)
    if document.get("IsEncrypted") is True:
        raise SettingsFileError(
            f'{path}: "IsEncrypted" is true; the dev host cannot decrypt values '
            "(run `func settings decrypt` or write the values in plain text)"
        )
    raw_values = document.get("Values", {})
    if not isinstance(raw_values, dict):
        raise SettingsFileError(f'{path}: "Values" must be an object of name: string pairs')
    values = {
        str(name): _setting_text(path, name, value) for name, value in raw_values.items() if value is not None
    }
    port: int | None = None
    host_section = document.get("Host", {})
    if isinstance(host_section, dict) and "LocalHttpPort" in host_section:
        try:
            port = int(host_section["LocalHttpPort"])
        except (TypeError, ValueError) as exc:
            raise SettingsFileError(f'{path}: "Host"."LocalHttpPort" must be a port number') from exc
    return LocalSettings(values=values, local_http_port=port, path=path)


def apply_to_environment(values: dict[str, str], environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Set each value that is not already in the environment; return the names that were set."""
    applied = []
    for name, value in values.items():
        if name not in environ:
            environ[name] = value
            applied.append(name)
    return applied


def read_route_prefix(app_dir: Path) -> str:
    """`extensions.http.routePrefix` from `<app_dir>/host.json`; "api" if the file or setting is absent."""
    path = app_dir / "host.json"
    if not path.exists():
        return DEFAULT_ROUTE_PREFIX
    document = _read_json_object(path)
    extensions = document.get("extensions") or {}
    http = extensions.get("http") if isinstance(extensions, dict) else None
    if not isinstance(http, dict) or "routePrefix" not in http:
        return DEFAULT_ROUTE_PREFIX
    prefix = http["routePrefix"]
    if not isinstance(prefix, str):
        raise SettingsFileError(f'{path}: "extensions"."http"."routePrefix" must be a string')
    return prefix.strip("/")
