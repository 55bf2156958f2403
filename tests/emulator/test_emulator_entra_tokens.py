"""The emulator's check of Entra bearer tokens (`wps_emulator.entra`), against a real local token issuer.

The issuer (tests/keyless/local_issuer.py) publishes OpenID metadata and keys as an Entra tenant does and
signs tokens as Entra signs a managed identity's. A settable clock stands in for time where the key
refresh limits are concerned.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import jwt
import pytest

from devhost.processes import free_port
from tests.constants import ACCESS_KEY
from tests.keyless.local_issuer import APP_OBJECT_ID, SERVICE_CLIENT_ID, LocalIssuer, SigningKey
from wps_emulator.entra import (
    AUDIENCE,
    REFRESH_INTERVAL_S,
    RETRY_AFTER_FAILURE_S,
    EntraVerifier,
    KeysUnavailable,
    SigningKeys,
    is_entra_token,
)
from wps_emulator.tokens import TokenError


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def verifier(issuer: LocalIssuer, clock: Clock) -> AsyncIterator[EntraVerifier]:
    checker = EntraVerifier(SigningKeys(issuer.tenant_id, issuer.authority, clock=clock))
    yield checker
    await checker.close()


def app_token(local_issuer: LocalIssuer, **options: object) -> str:
    """What the app's managed identity gets for Web PubSub: a v1 token for https://webpubsub.azure.com."""
    claims: dict[str, object] = {"audience": AUDIENCE, "version": 1, "object_id": APP_OBJECT_ID}
    return local_issuer.token(**{**claims, **options})  # type: ignore[arg-type]


async def refusal(verifier: EntraVerifier, token: str) -> str:
    with pytest.raises(TokenError) as refused:
        await verifier.verify(token)
    assert refused.value.status == 401
    return str(refused.value)


def key_fetches(issuer: LocalIssuer) -> int:
    return issuer.requests[issuer.jwks_path]


# --- what a token must be ----------------------------------------------------------------------------


async def test_a_managed_identity_token_for_web_pubsub_is_accepted_and_names_the_caller(
    verifier: EntraVerifier, issuer: LocalIssuer
) -> None:
    caller = await verifier.verify(app_token(issuer))
    assert (caller.object_id, caller.client_id) == (APP_OBJECT_ID, SERVICE_CLIENT_ID)
    assert caller.describe() == f"Entra object id {APP_OBJECT_ID} (app {SERVICE_CLIENT_ID})"


async def test_a_v2_token_of_the_tenant_is_accepted(verifier: EntraVerifier, issuer: LocalIssuer) -> None:
    caller = await verifier.verify(app_token(issuer, version=2))
    assert caller.object_id == APP_OBJECT_ID


async def test_a_token_for_another_audience_is_refused_naming_the_one_expected(
    verifier: EntraVerifier, issuer: LocalIssuer
) -> None:
    message = await refusal(verifier, app_token(issuer, audience="https://storage.azure.com"))
    assert "'https://storage.azure.com'" in message
    assert "https://webpubsub.azure.com/.default" in message


async def test_a_token_of_another_tenant_is_refused(verifier: EntraVerifier, issuer: LocalIssuer) -> None:
    other = f"https://sts.windows.net/{uuid.uuid4()}/"
    message = await refusal(verifier, app_token(issuer, issuer=other))
    assert f"issued by {other!r}, not by tenant {issuer.tenant_id}" in message
    assert issuer.v1_issuer in message


async def test_an_expired_token_is_refused(verifier: EntraVerifier, issuer: LocalIssuer) -> None:
    expired = app_token(issuer, lifetime_s=-360)  # beyond the 5 minutes of clock skew
    assert await refusal(verifier, expired) == "the Entra token has expired"


async def test_a_token_not_valid_yet_is_refused(verifier: EntraVerifier, issuer: LocalIssuer) -> None:
    early = app_token(issuer, not_before_in_s=600)
    assert "not valid yet" in await refusal(verifier, early)


async def test_a_token_signed_by_another_key_under_a_published_key_id_is_refused(
    verifier: EntraVerifier, issuer: LocalIssuer
) -> None:
    forger = SigningKey.generate(kid=issuer.key.kid)
    message = await refusal(verifier, app_token(issuer, key=forger))
    assert message == "the Entra token's signature does not verify with the tenant's key"


async def test_an_access_key_token_is_not_taken_for_an_entra_token(verifier: EntraVerifier) -> None:
    hmac_token = jwt.encode({"aud": AUDIENCE, "exp": 2**31}, ACCESS_KEY, algorithm="HS256")
    assert not is_entra_token(hmac_token)
    assert "must be signed with RS256" in await refusal(verifier, hmac_token)


# --- where the keys come from ------------------------------------------------------------------------


async def test_a_key_id_the_emulator_does_not_hold_fetches_the_keys_again(
    verifier: EntraVerifier, issuer: LocalIssuer
) -> None:
    await verifier.verify(app_token(issuer))
    issuer.rotate()
    caller = await verifier.verify(app_token(issuer))
    assert caller.object_id == APP_OBJECT_ID
    assert key_fetches(issuer) == 2


async def test_unknown_key_ids_fetch_the_keys_at_most_once_per_interval(
    verifier: EntraVerifier, issuer: LocalIssuer, clock: Clock
) -> None:
    await verifier.verify(app_token(issuer))
    unpublished = SigningKey.generate()
    message = await refusal(verifier, app_token(issuer, key=unpublished))
    assert f"key id {unpublished.kid!r}, which tenant {issuer.tenant_id} does not publish" in message
    await refusal(verifier, app_token(issuer, key=SigningKey.generate()))
    assert key_fetches(issuer) == 2  # the first fetch, and one for the first unknown key id
    clock.now += REFRESH_INTERVAL_S
    await refusal(verifier, app_token(issuer, key=SigningKey.generate()))
    assert key_fetches(issuer) == 3


async def test_concurrent_first_tokens_share_one_fetch(verifier: EntraVerifier, issuer: LocalIssuer) -> None:
    callers = await asyncio.gather(*(verifier.verify(app_token(issuer)) for _ in range(5)))
    assert {caller.object_id for caller in callers} == {APP_OBJECT_ID}
    assert key_fetches(issuer) == 1


async def test_keys_that_cannot_be_fetched_make_the_check_unavailable_naming_the_url(
    issuer: LocalIssuer,
) -> None:
    authority = f"http://127.0.0.1:{free_port()}/{issuer.tenant_id}"  # nothing listens there
    checker = EntraVerifier(SigningKeys(issuer.tenant_id, authority))
    try:
        with pytest.raises(KeysUnavailable, match=f"GET {authority}/v2.0/.well-known/openid-configuration"):
            await checker.verify(app_token(issuer))
    finally:
        await checker.close()


async def test_a_failing_key_endpoint_is_asked_again_only_after_a_pause(
    verifier: EntraVerifier, issuer: LocalIssuer, clock: Clock
) -> None:
    issuer.fail_with = 500
    with pytest.raises(KeysUnavailable, match="answered 500"):
        await verifier.verify(app_token(issuer))
    issuer.fail_with = None
    with pytest.raises(KeysUnavailable, match="answered 500"):
        await verifier.verify(app_token(issuer))  # the last failure, without asking again
    clock.now += RETRY_AFTER_FAILURE_S
    assert (await verifier.verify(app_token(issuer))).object_id == APP_OBJECT_ID


async def test_keys_held_keep_working_while_the_key_endpoint_is_down(
    verifier: EntraVerifier, issuer: LocalIssuer
) -> None:
    await verifier.verify(app_token(issuer))
    issuer.fail_with = 503
    assert (await verifier.verify(app_token(issuer))).object_id == APP_OBJECT_ID
    issuer.rotate()
    with pytest.raises(KeysUnavailable, match="answered 503"):
        await verifier.verify(app_token(issuer))


async def test_metadata_naming_another_tenant_is_not_trusted(issuer: LocalIssuer) -> None:
    tenant = str(uuid.uuid4())  # the emulator's tenant; the authority publishes another one's metadata
    checker = EntraVerifier(SigningKeys(tenant, issuer.authority))
    try:
        with pytest.raises(KeysUnavailable, match="does not name the tenant"):
            await checker.verify(app_token(issuer))
    finally:
        await checker.close()


async def test_keys_are_fetched_over_https_or_from_this_machine_only(issuer: LocalIssuer) -> None:
    checker = EntraVerifier(SigningKeys(issuer.tenant_id, f"http://example.com/{issuer.tenant_id}"))
    try:
        with pytest.raises(KeysUnavailable, match="is not an https URL"):
            await checker.verify(app_token(issuer))
    finally:
        await checker.close()
