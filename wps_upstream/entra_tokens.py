"""Entra bearer tokens on the webhook: the Web PubSub service proves with its managed identity who sends
each event (the hub's event handler auth is `ManagedIdentity`, its resource the app's audience).

A token is accepted when it is an RS256 JWT signed by one of the tenant's published keys, issued by the
configured tenant (its v1 or v2 issuer), for `WebPubSubUpstreamAudience`, within its `nbf`/`exp`, and, when
`WebPubSubUpstreamAllowedCallers` is set, from one of those identities (`oid`, `appid` or `azp`).

The keys come from the tenant's OpenID metadata (`jwks_uri`), fetched on first use and kept for this
process. A token naming an unknown key id (`kid`) fetches them again, at most once per
`REFRESH_INTERVAL_S`, so a flood of made-up key ids cannot make the app hammer the metadata endpoint.
This module is imported only when upstream auth is configured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from wps_upstream.errors import DependencyFailed, Unauthorized
from wps_upstream.settings import LOOPBACK_HOSTS, UpstreamAuth

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"  # what Entra signs access tokens with; nothing else is accepted
LEEWAY_S = 60  # clock skew tolerated on exp and nbf
REFRESH_INTERVAL_S = 30.0  # at most one key fetch per interval once keys are held
RETRY_AFTER_FAILURE_S = 5.0  # at most one key fetch per interval while no keys could be fetched yet
MAX_KEY_AGE_S = 24 * 3600.0  # keys are fetched again after this long, so a removed key stops working
MAX_DOCUMENT_BYTES = 1 << 20
CALLER_CLAIMS = ("oid", "appid", "azp")
UPSTREAM_SETTINGS = "WebPubSubUpstreamAudience and WebPubSubUpstreamTenantId"


class KeyFetchFailed(Exception):
    """The tenant's OpenID metadata or keys could not be fetched or read."""


@dataclass(frozen=True)
class TenantKeys:
    """What the tenant's OpenID metadata says: the issuers of its tokens and its signing keys by key id."""

    issuers: frozenset[str]
    keys: Mapping[str, jwt.PyJWK]


def public_cloud_issuers(tenant_id: str) -> frozenset[str]:
    """The v1 and v2 issuers of a tenant in the public cloud."""
    return frozenset(
        {f"https://sts.windows.net/{tenant_id}/", f"https://login.microsoftonline.com/{tenant_id}/v2.0"}
    )


class SigningKeys:
    """The tenant's issuers and signing keys, fetched from its OpenID metadata and cached in this process."""

    def __init__(
        self, auth: UpstreamAuth, timeout_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._auth = auth
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._tenant: TenantKeys | None = None
        self._fetched_at = 0.0
        self._last_attempt: float | None = None
        self._fetch: asyncio.Task[TenantKeys] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def metadata_url(self) -> str:
        return f"{self._auth.authority}/v2.0/.well-known/openid-configuration"

    async def lookup(self, kid: str) -> tuple[jwt.PyJWK, frozenset[str]]:
        """The key named `kid` and the accepted issuers; fetches keys when `kid` is unknown (rate-limited).

        401 when the tenant does not publish `kid`; 503 when the keys cannot be fetched.
        """
        tenant = self._tenant
        stale = tenant is not None and self._clock() - self._fetched_at > MAX_KEY_AGE_S
        if (tenant is None or kid not in tenant.keys or stale) and self._may_fetch():
            tenant = await self._refresh(keep_on_failure=tenant is not None and kid in tenant.keys)
        if tenant is None:
            raise self._unreachable()
        if kid not in tenant.keys:
            raise Unauthorized(
                "The bearer token is signed with a key (kid) that the tenant's OpenID metadata does not list."
            )
        return tenant.keys[kid], tenant.issuers

    def _may_fetch(self) -> bool:
        if self._fetch is not None and not self._fetch.done():
            return True  # join the fetch under way
        if self._last_attempt is None:
            return True
        interval = REFRESH_INTERVAL_S if self._tenant is not None else RETRY_AFTER_FAILURE_S
        return self._clock() - self._last_attempt >= interval

    async def _refresh(self, *, keep_on_failure: bool) -> TenantKeys | None:
        """Fetch once for every caller waiting now; a caller whose key is still held keeps it on failure."""
        if self._fetch is None or self._fetch.done():
            self._last_attempt = self._clock()
            self._fetch = asyncio.ensure_future(self._fetch_tenant())
        try:
            # Shielded: a caller that gives up does not cancel the fetch others wait for.
            tenant = await asyncio.shield(self._fetch)
        except KeyFetchFailed as error:
            logger.warning("Could not fetch the signing keys of the webhook's tenant: %s", error)
            if keep_on_failure:
                return self._tenant
            raise self._unreachable() from error
        self._tenant, self._fetched_at = tenant, self._clock()
        return tenant

    def _unreachable(self) -> DependencyFailed:
        return DependencyFailed(
            f"Could not fetch the signing keys of tenant {self._auth.tenant_id} from {self.metadata_url}; "
            "the event can be retried. Details are in the function log."
        )

    async def _fetch_tenant(self) -> TenantKeys:
        metadata = await self._get_json(self.metadata_url)
        issuers = {_text(metadata, "issuer", self.metadata_url)}
        if self._auth.public_cloud:
            issuers = set(public_cloud_issuers(self._auth.tenant_id))
        else:
            issuers |= await self._v1_issuer()
        foreign = [issuer for issuer in issuers if self._auth.tenant_id not in issuer]
        if foreign:
            raise KeyFetchFailed(f"the issuer {foreign[0]!r} in the metadata does not name the tenant")
        jwks_uri = _text(metadata, "jwks_uri", self.metadata_url)
        keys = _signing_keys(await self._get_json(jwks_uri), jwks_uri)
        logger.info("Fetched %d signing keys of tenant %s from %s", len(keys), self._auth.tenant_id, jwks_uri)
        return TenantKeys(frozenset(issuers), keys)

    async def _v1_issuer(self) -> set[str]:
        """The v1 issuer of a custom authority, if it publishes v1 metadata (tokens may be v1 or v2)."""
        url = f"{self._auth.authority}/.well-known/openid-configuration"
        try:
            return {_text(await self._get_json(url), "issuer", url)}
        except KeyFetchFailed as error:
            logger.info("No v1 OpenID metadata at %s (%s); accepting v2 tokens only", url, error)
            return set()

    async def _get_json(self, url: str) -> dict[str, Any]:
        _check_url(url, self._auth.authority)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise KeyFetchFailed(f"GET {url} answered {response.status}")
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KeyFetchFailed(f"GET {url} failed: {type(error).__name__}: {error}") from error
        if len(body) > MAX_DOCUMENT_BYTES:
            raise KeyFetchFailed(f"GET {url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError as error:
            raise KeyFetchFailed(f"GET {url} answered something other than JSON") from error
        if not isinstance(document, dict):
            raise KeyFetchFailed(f"GET {url} answered JSON that is not an object")
        return document

    async def close(self) -> None:
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()
        if self._session is not None:
            await self._session.close()


def _text(document: Mapping[str, Any], name: str, url: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise KeyFetchFailed(f"the OpenID metadata at {url} has no {name}")
    return value


def _check_url(url: str, authority: str) -> None:
    """https only; http only on this machine, and only when the authority itself is local."""
    parts = urlsplit(url)
    local = (parts.hostname or "").lower() in LOOPBACK_HOSTS and urlsplit(authority).scheme == "http"
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise KeyFetchFailed(f"{url} is not an https:// URL")


def _signing_keys(document: Mapping[str, Any], url: str) -> dict[str, jwt.PyJWK]:
    """The RSA signing keys of a JWKS document, by key id; keys of other types or uses are skipped."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise KeyFetchFailed(f"the key set at {url} has no keys list")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=ALGORITHM)
        except jwt.PyJWTError as error:
            logger.warning("Skipping key %s of %s: %s", kid, url, error)
    if not keys:
        raise KeyFetchFailed(f"the key set at {url} holds no RSA signing key")
    return keys


_CLAIM_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The bearer token has expired."),
    (jwt.ImmatureSignatureError, "The bearer token is not valid yet (nbf is in the future)."),
    (jwt.InvalidSignatureError, "The bearer token's signature does not verify with the tenant's key."),
    (
        jwt.InvalidIssuerError,
        "The bearer token was issued by another tenant or authority than WebPubSubUpstreamTenantId's.",
    ),
)


class EntraTokenVerifier:
    """Checks the `Authorization: Bearer` token of each webhook request against the upstream settings."""

    def __init__(self, auth: UpstreamAuth, timeout_s: float, *, keys: SigningKeys | None = None) -> None:
        self.auth = auth
        self.keys = keys or SigningKeys(auth, timeout_s)

    async def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; 401 naming what is wrong (never echoing the token); 503 without keys."""
        token = _bearer(authorization)
        kid = _key_id(token)
        key, issuers = await self.keys.lookup(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.auth.audience,
                issuer=issuers,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidAudienceError:
            raise Unauthorized(
                "The bearer token is for another audience: this app accepts tokens for "
                f"{self.auth.audience!r} (WebPubSubUpstreamAudience), the resource the hub's event handler "
                "must ask for."
            ) from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthorized(f"The bearer token has no {error.claim} claim.") from None
        except jwt.PyJWTError as error:
            message = next((text for kind, text in _CLAIM_ERRORS if isinstance(error, kind)), None)
            raise Unauthorized(message or "The bearer token is malformed.") from None
        self._check_caller(claims)
        return claims

    def _check_caller(self, claims: Mapping[str, Any]) -> None:
        allowed = self.auth.allowed_callers
        if not allowed:
            return
        ids = {str(claims[name]).lower() for name in CALLER_CLAIMS if isinstance(claims.get(name), str)}
        if not ids & allowed:
            logger.warning(
                "Refused a caller not in WebPubSubUpstreamAllowedCallers: oid=%s appid=%s",
                claims.get("oid"),
                claims.get("appid") or claims.get("azp"),
            )
            raise Unauthorized(
                "The caller is not allowed: its identity is not in WebPubSubUpstreamAllowedCallers."
            )

    async def close(self) -> None:
        await self.keys.close()


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise Unauthorized(
            "The Authorization header is missing: this webhook accepts events that carry the Web PubSub "
            "service's Entra token. Set the hub's event handler auth to ManagedIdentity with this app's "
            "audience (WebPubSubUpstreamAudience)."
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header is not a bearer token (Authorization: Bearer <token>).")
    return token.strip()


def _key_id(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized("The bearer token is not a JWT.") from None
    if header.get("alg") != ALGORITHM:
        raise Unauthorized(f"The bearer token is not signed with {ALGORITHM}, as Entra signs its tokens.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthorized("The bearer token names no signing key (kid).")
    return kid
