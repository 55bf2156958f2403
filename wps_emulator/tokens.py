"""JWTs the emulator accepts: client access tokens and REST bearer tokens, one decoder and one audience rule.

Both kinds are HS256 JWTs keyed by the access-key string (its UTF-8 bytes) with a required `exp`
(5 minutes of clock skew allowed) and an `aud` naming a URL of this service. An audience is compared
as (scheme, host, port, path): `ws` counts as `http` and `wss` as `https`, scheme and host are
case-insensitive, and a port left out is the scheme's default, so `http://h` and `http://h:80` name
the same endpoint while `http://h:8080` does not. That is how URLs compare in the service and how
Microsoft's SDKs write audiences (`<endpoint>/client/hubs/<hub>`, and the full request URL for REST).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt

CLOCK_SKEW_SECONDS = 300  # like Microsoft's emulator: tolerate clocks that are a few minutes apart
MAX_CLAIM_DEPTH = 32  # claims nest a level or two; a deeper token is refused, not walked recursively
_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}

# (scheme, host, port) of a base URL, as `url_parts` normalises it
Origin = tuple[str, str, int | None]


class TokenError(Exception):
    """The token is refused; `status` is the HTTP answer (401)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


# --- decoding -----------------------------------------------------------------------------------------


def decode(token: str, access_key: str, *, what: str) -> dict[str, Any]:
    """Check signature and lifetime and return the claims; `what` names the token in error messages."""
    try:
        claims = jwt.decode(
            token,
            access_key.encode("utf-8"),
            algorithms=["HS256"],
            options={"verify_aud": False, "require": ["exp", "aud"]},
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise TokenError(f"the {what} has expired") from None
    except jwt.InvalidSignatureError:
        raise TokenError(f"the {what} is not signed with this emulator's access key") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"the {what} has no {exc.claim!r} claim") from None
    except jwt.ImmatureSignatureError:
        raise TokenError(f"the {what} is not valid yet (its iat or nbf is in the future)") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"the {what} is malformed: {exc}") from None
    if _depth(claims) > MAX_CLAIM_DEPTH:
        raise TokenError(f"the {what} has claims nested deeper than {MAX_CLAIM_DEPTH} levels")
    return claims


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in a decoded JSON value (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


# --- audiences ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlParts:
    scheme: str  # http or https
    host: str  # lower case, without IPv6 brackets
    port: int | None  # explicit, or the scheme's default
    path: str

    @property
    def origin(self) -> Origin:
        return (self.scheme, self.host, self.port)


def url_parts(url: str) -> UrlParts | None:
    """The comparable parts of an absolute http(s) or ws(s) URL; None when it is not one."""
    try:
        parts = urlsplit(url)
        scheme = _SCHEMES.get(parts.scheme.lower())
        port = parts.port
    except ValueError:
        return None
    if scheme is None or not parts.hostname:
        return None
    return UrlParts(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path)


def origin_of(base_url: str) -> Origin:
    """(scheme, host, port) of a base URL such as `http://localhost:8080`; raises ValueError if none."""
    parts = url_parts(base_url)
    if parts is None:
        raise ValueError(f"{base_url!r} is not an http(s) URL")
    return parts.origin


def audience_matches(audience: str, origins: Collection[Origin], path_matches: Callable[[str], bool]) -> bool:
    """True when `audience` (as given, or URL-decoded once) is a URL on one of `origins` whose path
    `path_matches` accepts. Clients differ in how much of a hub, group or user name they percent-encode.
    """
    for candidate in _spellings(audience):
        parts = url_parts(candidate)
        if parts is not None and parts.origin in origins and path_matches(parts.path):
            return True
    return False


def _spellings(audience: str) -> Iterator[str]:
    yield audience
    decoded = unquote(audience)
    if decoded != audience:
        yield decoded


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims["aud"]
    return [a for a in (aud if isinstance(aud, list) else [aud]) if isinstance(a, str)]


def _describe(origins: Collection[Origin]) -> str:
    return ", ".join(sorted(_base_url(o) for o in origins))


def _base_url(origin: Origin) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port == _DEFAULT_PORTS[scheme] else f":{port}")


# --- client access tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientClaims:
    """What a valid client token grants."""

    user_id: str | None
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    raw: dict[str, Any]

    def as_connect_claims(self) -> dict[str, list[str]]:
        """The token claims as the `connect` event body carries them: name -> list of strings."""
        claims: dict[str, list[str]] = {}
        for name, value in self.raw.items():
            values = value if isinstance(value, list) else [value]
            claims[name] = [_claim_text(v) for v in values]
        return claims


def _claim_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def verify_client_token(token: str, access_key: str, hub: str, origins: Collection[Origin]) -> ClientClaims:
    """Check a client token for `hub`: signature, lifetime, and `aud` = `<origin>/client/hubs/<hub>`.

    The path must match exactly, except the hub name, which compares case-insensitively.
    """
    claims = decode(token, access_key, what="access token")

    def path_matches(path: str) -> bool:
        head, _, name = unquote(path).rpartition("/")
        return head == "/client/hubs" and name.casefold() == hub.casefold()

    if not any(audience_matches(aud, origins, path_matches) for aud in _audiences(claims)):
        raise TokenError(
            f"the access token audience {claims['aud']!r} does not match this endpoint; expected "
            f"<endpoint>/client/hubs/{hub} with <endpoint> one of {_describe(origins)}"
        )
    sub = claims.get("sub")
    return ClientClaims(
        user_id=str(sub) if sub not in (None, "") else None,
        roles=_strings(claims.get("role")),
        groups=_strings(claims.get("webpubsub.group")),
        raw=claims,
    )


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    return tuple(str(v) for v in values)


# --- REST bearer tokens -------------------------------------------------------------------------------


def verify_rest_token(token: str, access_key: str, raw_path: str, origins: Collection[Origin]) -> None:
    """Check a REST bearer token: signature, lifetime, and `aud` = the request URL, query ignored.

    The SDK signs the full URL, `?api-version=` included; the request path is accepted as received
    or URL-decoded once, and a trailing slash does not count.
    """
    claims = decode(token, access_key, what="bearer token")
    path = raw_path.partition("?")[0]
    accepted = {path.rstrip("/"), unquote(path).rstrip("/")}

    def path_matches(candidate: str) -> bool:
        return candidate.rstrip("/") in accepted

    if not any(audience_matches(aud, origins, path_matches) for aud in _audiences(claims)):
        raise TokenError(
            f"the bearer token audience {claims['aud']!r} does not match the request URL: expected "
            f"<endpoint>{path} with <endpoint> one of {_describe(origins)}"
        )
