"""Microsoft Entra bearer tokens on the REST API, as the service accepts them from an app's managed identity.

Off unless a tenant is configured (`--entra-tenant`). A token is accepted when it is an RS256 JWT
- signed by a key the tenant publishes: `<authority>/v2.0/.well-known/openid-configuration` names the
  key set (`jwks_uri`);
- issued by that tenant: an issuer its v2 or v1 OpenID metadata names (`<authority>/v2.0`,
  `https://sts.windows.net/<tenant>/`), which must contain the tenant id;
- for the audience `https://webpubsub.azure.com` (the scope `https://webpubsub.azure.com/.default`);
- within `nbf` and `exp` (required), with the emulator's 5 minutes of clock skew.

The keys are fetched on the first Entra token and kept while the emulator runs. A token naming a key id
(`kid`) the emulator does not hold fetches them again (a rotation): at once the first time, then at
most once per `REFRESH_INTERVAL_S`, so made-up key ids cannot make the emulator hammer the authority.
Concurrent requests share one fetch. Role assignments (Web PubSub Service Owner) are not checked: any
identity of the tenant with a token for the audience may call.
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

from .hosts import is_loopback
from .tokens import CLOCK_SKEW_SECONDS, TokenError

log = logging.getLogger(__name__)

AUDIENCE = "https://webpubsub.azure.com"  # the resource of Web PubSub's data plane
ALGORITHM = "RS256"  # what Entra signs access tokens with
REFRESH_INTERVAL_S = 30.0  # between fetches caused by unknown key ids
RETRY_AFTER_FAILURE_S = 5.0  # between attempts while no keys could be fetched
FETCH_TIMEOUT_S = 10.0
MAX_DOCUMENT_BYTES = 1 << 20


class KeysUnavailable(Exception):
    """The tenant's signing keys could not be fetched; the token can be neither accepted nor refused."""


@dataclass(frozen=True)
class EntraCaller:
    """Who an accepted token names: the identity's object id and its application (client) id."""

    object_id: str | None
    client_id: str | None

    def describe(self) -> str:
        app = f" (app {self.client_id})" if self.client_id else ""
        return f"Entra object id {self.object_id or '?'}{app}"


@dataclass(frozen=True)
class TenantKeys:
    """What the tenant publishes: the issuers of its tokens and its signing keys by key id."""

    issuers: frozenset[str]
    keys: Mapping[str, jwt.PyJWK]
    jwks_uri: str


class SigningKeys:
    """The tenant's issuers and keys, fetched from its OpenID metadata and kept in this process."""

    def __init__(self, tenant: str, authority: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.tenant = tenant
        self.authority = authority
        self._clock = clock
        self._held: TenantKeys | None = None
        self._fetch: asyncio.Future[TenantKeys] | None = None
        self._last_refresh: float | None = None  # the last fetch an unknown key id caused
        self._last_failure: tuple[float, str] | None = None  # when, and why
        self._session: aiohttp.ClientSession | None = None

    @property
    def metadata_url(self) -> str:
        return f"{self.authority}/v2.0/.well-known/openid-configuration"

    async def lookup(self, kid: str) -> tuple[jwt.PyJWK, frozenset[str]]:
        """The key named `kid` and the accepted issuers.

        Raises TokenError (401) when the tenant does not publish `kid`, KeysUnavailable when the keys
        cannot be fetched.
        """
        held = self._held
        if held is None:
            held = await self._first_fetch()
        elif kid not in held.keys and self._may_refresh():
            self._last_refresh = self._clock()
            held = await self._shared_fetch()
        if kid not in held.keys:
            raise TokenError(
                f"the Entra token is signed with key id {kid!r}, which tenant {self.tenant} does not publish "
                f"at {held.jwks_uri}"
            )
        return held.keys[kid], held.issuers

    async def _first_fetch(self) -> TenantKeys:
        joining = self._fetch is not None and not self._fetch.done()
        failure = self._last_failure
        if not joining and failure is not None and self._clock() - failure[0] < RETRY_AFTER_FAILURE_S:
            raise KeysUnavailable(failure[1])
        return await self._shared_fetch()

    def _may_refresh(self) -> bool:
        if self._fetch is not None and not self._fetch.done():
            return True  # join the fetch under way
        return self._last_refresh is None or self._clock() - self._last_refresh >= REFRESH_INTERVAL_S

    async def _shared_fetch(self) -> TenantKeys:
        """One fetch for every request waiting now; its failure is every waiter's KeysUnavailable."""
        if self._fetch is None or self._fetch.done():
            self._fetch = asyncio.ensure_future(self._fetch_tenant())
            # Read by every waiter; this keeps a failure no request waited for from being reported as lost.
            self._fetch.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            # Shielded: a request that ends (its client went away) does not cancel the others' fetch.
            held = await asyncio.shield(self._fetch)
        except KeysUnavailable as exc:
            self._last_failure = (self._clock(), str(exc))
            raise
        self._held = held
        return held

    async def _fetch_tenant(self) -> TenantKeys:
        try:
            metadata = await self._get_json(self.metadata_url)
            issuers = {_text(metadata, "issuer", self.metadata_url)} | await self._v1_issuer()
            foreign = sorted(issuer for issuer in issuers if self.tenant not in issuer.lower())
            if foreign:
                raise KeysUnavailable(f"the issuer {foreign[0]!r} in the metadata does not name the tenant")
            jwks_uri = _text(metadata, "jwks_uri", self.metadata_url)
            keys = _signing_keys(await self._get_json(jwks_uri), jwks_uri)
        except KeysUnavailable as exc:
            message = f"cannot fetch the signing keys of tenant {self.tenant}: {exc}"
            log.warning("Entra: %s", message)
            raise KeysUnavailable(message) from None
        log.info("Entra: fetched %d signing key(s) of tenant %s from %s", len(keys), self.tenant, jwks_uri)
        return TenantKeys(frozenset(issuers), keys, jwks_uri)

    async def _v1_issuer(self) -> set[str]:
        """The tenant's v1 issuer (managed identities get v1 tokens), when it publishes v1 metadata."""
        url = f"{self.authority}/.well-known/openid-configuration"
        try:
            return {_text(await self._get_json(url), "issuer", url)}
        except KeysUnavailable as exc:
            log.info("Entra: no v1 metadata (%s); accepting the v2 issuer only", exc)
            return set()

    async def _get_json(self, url: str) -> dict[str, Any]:
        _check_url(url)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise KeysUnavailable(f"GET {url} answered {response.status}")
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KeysUnavailable(f"GET {url} failed: {type(exc).__name__}: {exc}") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise KeysUnavailable(f"GET {url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise KeysUnavailable(f"GET {url} answered something other than JSON") from None
        if not isinstance(document, dict):
            raise KeysUnavailable(f"GET {url} answered JSON that is not an object")
        return document

    async def close(self) -> None:
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()
        if self._session is not None:
            await self._session.close()


def _text(document: Mapping[str, Any], name: str, url: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise KeysUnavailable(f"the document at {url} has no {name!r}")
    return value


def _check_url(url: str) -> None:
    """Keys travel over https; plain http only from this machine (a local token issuer)."""
    parts = urlsplit(url)
    local = parts.scheme == "http" and is_loopback(parts.hostname or "")
    if parts.scheme != "https" and not local:
        raise KeysUnavailable(f"{url} is not an https URL (http is accepted only on this machine)")


def _signing_keys(document: Mapping[str, Any], url: str) -> dict[str, jwt.PyJWK]:
    """The RSA signing keys of a key set, by key id; entries of other kinds are skipped."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise KeysUnavailable(f"the key set at {url} has no 'keys' list")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=ALGORITHM)
        except jwt.PyJWTError as exc:
            log.warning("Entra: skipping key %s of %s: %s", kid, url, exc)
    if not keys:
        raise KeysUnavailable(f"the key set at {url} holds no RSA signing key")
    return keys


# --- the token ---------------------------------------------------------------------------------------


def is_entra_token(token: str) -> bool:
    """True for a JWT signed with RS256 (how Entra signs), whatever else it holds."""
    try:
        return jwt.get_unverified_header(token).get("alg") == ALGORITHM
    except jwt.PyJWTError:
        return False


class EntraVerifier:
    """Checks the Entra bearer tokens of REST calls against one tenant."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys

    @classmethod
    def for_tenant(cls, tenant: str, authority: str) -> EntraVerifier:
        return cls(SigningKeys(tenant, authority))

    async def verify(self, token: str) -> EntraCaller:
        """The caller an accepted token names; TokenError (401) saying why not, or KeysUnavailable."""
        kid = _key_id(token)
        key, issuers = await self.keys.lookup(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=sorted(issuers),
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(self._refusal(exc, token, issuers)) from None
        client_id = claims.get("appid") or claims.get("azp")
        object_id = claims.get("oid")
        return EntraCaller(
            object_id=object_id if isinstance(object_id, str) else None,
            client_id=client_id if isinstance(client_id, str) else None,
        )

    def _refusal(self, error: jwt.PyJWTError, token: str, issuers: frozenset[str]) -> str:
        """Why the token is refused, naming what it holds and what is expected (never the token)."""
        if isinstance(error, jwt.InvalidAudienceError):
            return (
                f"the Entra token is for audience {_claim(token, 'aud')!r}; the REST API accepts tokens for "
                f"{AUDIENCE!r} (ask for the scope {AUDIENCE}/.default)"
            )
        if isinstance(error, jwt.InvalidIssuerError):
            return (
                f"the Entra token was issued by {_claim(token, 'iss')!r}, not by tenant {self.keys.tenant}; "
                f"accepted issuers: {', '.join(sorted(issuers))}"
            )
        if isinstance(error, jwt.MissingRequiredClaimError):
            return f"the Entra token has no {error.claim!r} claim"
        reason = next((text for kind, text in _REFUSALS if isinstance(error, kind)), None)
        return reason or f"the Entra token is malformed: {error}"

    async def close(self) -> None:
        await self.keys.close()


_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the Entra token has expired"),
    (jwt.ImmatureSignatureError, "the Entra token is not valid yet (its nbf or iat is in the future)"),
    (jwt.InvalidSignatureError, "the Entra token's signature does not verify with the tenant's key"),
)


def _claim(token: str, name: str) -> Any:
    """A claim of a token whose signature has verified (read again for the refusal's message)."""
    return jwt.decode(token, options={"verify_signature": False}).get(name)


def _key_id(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(f"the Entra token is malformed: {exc}") from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not kid:
        raise TokenError(f"the Entra token must be signed with {ALGORITHM} and name its key (kid)")
    return kid
