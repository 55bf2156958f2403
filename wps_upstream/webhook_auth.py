"""Who may call the webhook: abuse protection (origins), the Entra bearer token and the `ce-signature`.

`WebhookAuth` is built once from the settings. A POST is authenticated in this order: the bearer token
(`authenticate`, when upstream auth is configured), then, in `cloudevents.parse_event`, the origin and the
signature (when an access key is known). With both configured, both must pass. With neither, every
request is refused (fail closed) with a message naming the settings; the OPTIONS check uses the origin rule
only, since its answer reveals nothing but the accepted origin.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from wps_upstream.errors import BadRequest, ConfigurationError, Forbidden, Unauthorized
from wps_upstream.settings import Settings

ORIGIN_HEADER = "WebHook-Request-Origin"
ALLOWED_ORIGIN_HEADER = "WebHook-Allowed-Origin"
SIGNATURE_HEADER = "ce-signature"
AUTHORIZATION_HEADER = "Authorization"
_LIST_SEPARATORS = re.compile(r"[,\s]+")


def request_origins(value: str | None) -> list[str]:
    """The host names in a WebHook-Request-Origin value (comma or space separated), lower-cased."""
    return [item.lower() for item in _LIST_SEPARATORS.split(value or "") if item]


def expected_signature(access_key: str, connection_id: str) -> str:
    """hex(HMAC-SHA256(key = the access-key string as UTF-8, message = the connection id)), lower-case."""
    signer = _keyed(access_key).copy()  # the keyed state is set up once, not for every event
    signer.update(connection_id.encode("utf-8"))
    return signer.hexdigest()


@functools.lru_cache(maxsize=4)
def _keyed(access_key: str) -> hmac.HMAC:
    return hmac.new(access_key.encode("utf-8"), digestmod=hashlib.sha256)


def verify_signature(header: str | None, connection_id: str, access_key: str) -> bool:
    """True if any `sha256=<hex>` entry of ce-signature matches (case-insensitive, constant time)."""
    if not header:
        return False
    try:
        expected = expected_signature(access_key, connection_id).encode("ascii")
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text the service could have signed
        return False
    matched = False
    # One entry, the usual case, needs no split (a printable value without space or comma has no separator).
    single = header.isprintable() and " " not in header and "," not in header
    for entry in [header] if single else _LIST_SEPARATORS.split(header):
        scheme, sep, digest = entry.partition("=")
        if sep and scheme.lower() == "sha256":
            # Compare every entry (no early exit) so timing does not reveal which slot matched.
            matched |= hmac.compare_digest(digest.lower().encode("utf-8"), expected)
    return matched


class TokenVerifier(Protocol):
    """Checks an Authorization header (see entra_tokens.EntraTokenVerifier)."""

    async def verify(self, authorization: str | None) -> dict[str, Any]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class WebhookAuth:
    """The origins the webhook accepts, the key its events are signed with, and the bearer token check."""

    allowed_origins: frozenset[str]
    access_key: str | None  # None: keyless, no signature to check
    tokens: TokenVerifier | None = None  # None: no Entra tokens expected
    caller_verified: bool = False  # set on the copy `authenticate` returns once the bearer token passed

    @classmethod
    def of(
        cls, allowed_origins: Iterable[str], access_key: str | None, tokens: TokenVerifier | None = None
    ) -> WebhookAuth:
        return cls(frozenset(origin.lower() for origin in allowed_origins), access_key, tokens)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookAuth:
        """The webhook's auth; the Entra token check (entra_tokens) is imported only when configured."""
        tokens = None
        if settings.upstream_auth is not None:
            from wps_upstream.entra_tokens import EntraTokenVerifier

            tokens = EntraTokenVerifier(settings.upstream_auth, settings.dependency_timeout_s)
        return cls.of(settings.allowed_origins, settings.web_pubsub.access_key, tokens)

    def check_configured(self) -> None:
        """Refuse to serve the webhook (500, naming the settings) when nothing can authenticate its caller."""
        if self.access_key is None and self.tokens is None:
            raise ConfigurationError(
                "The webhook refuses every event: nothing can authenticate the service. Set "
                "WebPubSubUpstreamAudience and WebPubSubUpstreamTenantId (Entra tokens, keyless), or "
                "WebPubSubConnectionString with its AccessKey (signatures)."
            )

    async def authenticate(self, authorization: str | None) -> WebhookAuth:
        """This auth once the request's bearer token (its Authorization header) passed, when Entra tokens
        are expected (else 401)."""
        self.check_configured()
        if self.tokens is None:
            return self
        await self.tokens.verify(authorization)
        return replace(self, caller_verified=True)

    def check_origin(self, value: str | None) -> str:
        """The first allowed origin of a WebHook-Request-Origin value; 400 when absent, 403 when foreign."""
        self.check_configured()
        if value and (single := value.lower()) in self.allowed_origins:  # the usual value: one allowed host
            return single
        origins = request_origins(value)
        if not origins:
            raise BadRequest(f"Abuse protection: the {ORIGIN_HEADER} header is missing.")
        origin = next((origin for origin in origins if origin in self.allowed_origins), None)
        if origin is None:
            accepted = ", ".join(sorted(self.allowed_origins))
            raise Forbidden(
                f"Abuse protection: origin {value!r} is not allowed; this app accepts {accepted} (the Web "
                "PubSub service of its connection string or endpoint, and WebPubSubAllowedOrigins)."
            )
        return origin

    def check_signature(self, header: str | None, connection_id: str) -> None:
        """401 unless ce-signature carries the HMAC of the connection id with this app's key.

        With Entra tokens expected, the request must have passed `authenticate` first; keyless, that is
        the only check.
        """
        self.check_configured()
        if self.tokens is not None and not self.caller_verified:
            raise Unauthorized("The event's bearer token was not checked; it is refused.")
        if self.access_key is None:
            return
        if not header:
            raise Unauthorized("The ce-signature header is missing; events must be signed by the service.")
        if not verify_signature(header, connection_id, self.access_key):
            raise Unauthorized(
                "The ce-signature does not match: the event was not signed with this app's key."
            )

    async def close(self) -> None:
        if self.tokens is not None:
            await self.tokens.close()
