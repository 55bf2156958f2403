"""Who may call the webhook: abuse protection (origins) and the `ce-signature` check.

`WebhookAuth` is built once from the settings; `cloudevents.parse_event` calls it in the protocol's
order (origin, then signature) and the OPTIONS handler uses the same origin rule.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from wps_upstream.errors import BadRequest, Forbidden, Unauthorized

ORIGIN_HEADER = "WebHook-Request-Origin"
ALLOWED_ORIGIN_HEADER = "WebHook-Allowed-Origin"
SIGNATURE_HEADER = "ce-signature"
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
    expected = expected_signature(access_key, connection_id).encode("ascii")
    matched = False
    # One entry, the usual case, needs no split (a printable value without space or comma has no separator).
    single = header.isprintable() and " " not in header and "," not in header
    for entry in [header] if single else _LIST_SEPARATORS.split(header):
        scheme, sep, digest = entry.partition("=")
        if sep and scheme.lower() == "sha256":
            # Compare every entry (no early exit) so timing does not reveal which slot matched.
            matched |= hmac.compare_digest(digest.lower().encode("utf-8"), expected)
    return matched


@dataclass(frozen=True)
class WebhookAuth:
    """The origins the webhook accepts and the key its events are signed with."""

    allowed_origins: frozenset[str]
    access_key: str

    @classmethod
    def of(cls, allowed_origins: Iterable[str], access_key: str) -> WebhookAuth:
        return cls(frozenset(origin.lower() for origin in allowed_origins), access_key)

    def check_origin(self, value: str | None) -> str:
        """The first allowed origin of a WebHook-Request-Origin value; 400 when absent, 403 when foreign."""
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
                "PubSub service of its connection string, and WebPubSubAllowedOrigins)."
            )
        return origin

    def check_signature(self, header: str | None, connection_id: str) -> None:
        """401 unless ce-signature carries the HMAC of the connection id with this app's key."""
        if not header:
            raise Unauthorized("The ce-signature header is missing; events must be signed by the service.")
        if not verify_signature(header, connection_id, self.access_key):
            raise Unauthorized(
                "The ce-signature does not match: the event was not signed with this app's key."
            )
