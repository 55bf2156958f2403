"""Client access tokens: HS256 JWTs signed with the access key, audience = the client URL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt

CLOCK_SKEW_SECONDS = 300  # like Microsoft's emulator: tolerate clocks that are a few minutes apart
_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class TokenError(Exception):
    """The token is refused; `status` is the HTTP answer to the handshake."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


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
            claims[name] = [v if isinstance(v, str) else _json_scalar(v) for v in values]
        return claims


def _json_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normalize_url(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port], path) with ws->http, wss->https, case-folded host and no default port."""
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme.lower(), parts.scheme.lower())
    host = parts.netloc.lower()
    if host.endswith(":" + _DEFAULT_PORTS.get(scheme, "-")):
        host = host.rsplit(":", 1)[0]
    return scheme, host, parts.path


def verify_client_token(token: str, access_key: str, hub: str, endpoints: Iterable[str]) -> ClientClaims:
    """Check signature, lifetime and audience of a client token for `hub`.

    `endpoints` are the base URLs the client may have used to reach us (the Host it sent, and the
    configured public endpoint). The audience must be `<endpoint>/client/hubs/<hub>`: scheme and host
    compare case-insensitively, the path exactly except for the hub name, which is case-insensitive.
    """
    try:
        claims = jwt.decode(
            token,
            access_key.encode("utf-8"),
            algorithms=["HS256"],
            options={"verify_aud": False, "require": ["exp"]},
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("access token has expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError(
            "access token signature is invalid (is it signed with this emulator's key?)"
        ) from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"access token is missing the {exc.claim!r} claim") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenError("access token is not valid yet") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"access token is malformed: {exc}") from exc

    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    expected = [normalize_url(base.rstrip("/") + "/client/hubs/" + hub) for base in endpoints]
    if not any(_audience_matches(str(aud), expected) for aud in audiences if aud):
        raise TokenError(
            f"access token audience {claims.get('aud')!r} does not match this endpoint; "
            f"expected {expected[0][0]}://{expected[0][1]}{expected[0][2]}"
        )

    sub = claims.get("sub")
    return ClientClaims(
        user_id=str(sub) if sub not in (None, "") else None,
        roles=_strings(claims.get("role")),
        groups=_strings(claims.get("webpubsub.group")),
        raw=claims,
    )


def _audience_matches(audience: str, expected: list[tuple[str, str, str]]) -> bool:
    scheme, host, path = normalize_url(audience)
    head, _, hub = unquote(path).rpartition("/")
    for e_scheme, e_host, e_path in expected:
        e_head, _, e_hub = unquote(e_path).rpartition("/")
        if (scheme, host, head) == (e_scheme, e_host, e_head) and hub.casefold() == e_hub.casefold():
            return True
    return False


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    return tuple(str(v) for v in values)
