"""Route templates as the Functions host understands them, matched against request paths.

Supported: literal segments (matched case-insensitively, like ASP.NET Core routing), `{name}`,
`{name:constraint}` (int, long, bool, alpha, guid, double, float, decimal, datetime are checked;
other constraints are accepted and not checked), `{name?}` (optional, trailing segments only) and
`{*name}` / `{**name}` (catch-all, the rest of the path, possibly empty).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

_PARAMETER = re.compile(r"^\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_][\w]*)(?P<rest>[^}]*)\}$")


class RouteTemplateError(ValueError):
    """A route template the dev host cannot serve; the message names the template and the problem."""


def _is_int(value: str) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_decimal(value: str) -> bool:
    try:
        Decimal(value)
    except InvalidOperation:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _is_int,
    "long": _is_int,
    "bool": lambda value: value.lower() in ("true", "false"),
    "alpha": lambda value: re.fullmatch(r"[A-Za-z]+", value) is not None,
    "guid": _is_guid,
    "double": _is_float,
    "float": _is_float,
    "decimal": _is_decimal,
    "datetime": _is_datetime,
}


@dataclass(frozen=True)
class Segment:
    """One `/`-separated piece of a template: a literal, a parameter, or the catch-all."""

    literal: str | None = None
    name: str | None = None
    optional: bool = False
    catch_all: bool = False
    checks: tuple[Callable[[str], bool], ...] = ()

    @property
    def rank(self) -> int:
        """Precedence like ASP.NET Core: literals, then constrained, plain, optional, catch-all."""
        if self.literal is not None:
            return 0
        if self.catch_all:
            return 4
        if self.optional:
            return 3
        return 1 if self.checks else 2

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


def _parse_segment(template: str, text: str) -> Segment:
    if "{" not in text and "}" not in text:
        return Segment(literal=text)
    found = _PARAMETER.match(text)
    if found is None:
        raise RouteTemplateError(
            f"route {template!r}: segment {text!r} is not supported by the dev host "
            "(use a whole segment per parameter: {name}, {name:int}, {name?} or {*rest})"
        )
    rest = found["rest"]
    optional = rest.endswith("?")
    if optional:
        rest = rest[:-1]
    if "=" in rest:  # a default value: `{name=value}`; the default is not applied, only tolerated
        rest = rest.split("=", 1)[0]
        optional = True
    checks: list[Callable[[str], bool]] = []
    for constraint in filter(None, rest.split(":")):
        check = _CONSTRAINTS.get(constraint.split("(", 1)[0].lower())
        if check is not None:
            checks.append(check)
    return Segment(name=found["name"], optional=optional, catch_all=bool(found["star"]), checks=tuple(checks))


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed route template (without the route prefix); `match` gives the route parameters."""

    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, text: str) -> RouteTemplate:
        """Parse a template such as `items/{id:int}/{*rest}`; raise RouteTemplateError if unsupported."""
        stripped = text.strip("/")
        segments = tuple(_parse_segment(text, part) for part in stripped.split("/")) if stripped else ()
        for index, segment in enumerate(segments):
            last = index == len(segments) - 1
            if segment.catch_all and not last:
                raise RouteTemplateError(f"route {text!r}: a catch-all parameter must be the last segment")
            if segment.optional and not all(later.optional or later.catch_all for later in segments[index:]):
                raise RouteTemplateError(f"route {text!r}: only trailing parameters can be optional")
        return cls(stripped, segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key: more specific templates first."""
        return tuple(segment.rank for segment in self.segments)

    def match(self, raw_parts: list[str]) -> dict[str, str] | None:
        """Route parameters if the path (split on `/`, still percent-encoded) fits, else None."""
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.catch_all:
                value = unquote("/".join(raw_parts[index:]))
                if not segment.accepts(value) and value:
                    return None
                params[str(segment.name)] = value
                return params
            if index >= len(raw_parts) or raw_parts[index] == "":
                if segment.optional and index >= len(raw_parts):
                    return params
                return None
            value = unquote(raw_parts[index])
            if segment.literal is not None:
                if value.lower() != segment.literal.lower():
                    return None
            elif segment.accepts(value):
                params[str(segment.name)] = value
            else:
                return None
        return params if len(raw_parts) == len(self.segments) else None


def split_path(raw_path: str) -> list[str]:
    """A raw request path (no query) as segments; one trailing slash is ignored, like the host."""
    stripped = raw_path.strip("/")
    return stripped.split("/") if stripped else []
