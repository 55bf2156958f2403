"""The webhook's Entra token check, against the local issuer's real metadata and keys."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import jwt
import pytest

from tests.keyless.local_issuer import (
    SERVICE_CLIENT_ID,
    SERVICE_OBJECT_ID,
    TENANT_ID,
    UPSTREAM_AUDIENCE,
    LocalIssuer,
    SigningKey,
)
from wps_upstream import entra_tokens
from wps_upstream.entra_tokens import EntraTokenVerifier, SigningKeys, public_cloud_issuers
from wps_upstream.errors import DependencyFailed, Unauthorized
from wps_upstream.settings import UpstreamAuth


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def upstream_auth(issuer: LocalIssuer, *allowed: str) -> UpstreamAuth:
    return UpstreamAuth(UPSTREAM_AUDIENCE, TENANT_ID, issuer.authority, frozenset(allowed))


@pytest.fixture
async def verifier(issuer: LocalIssuer, clock: FakeClock) -> AsyncIterator[EntraTokenVerifier]:
    auth = upstream_auth(issuer)
    checker = EntraTokenVerifier(auth, 2.0, keys=SigningKeys(auth, 2.0, clock=clock))
    yield checker
    await checker.close()


async def refusal(verifier: EntraTokenVerifier, authorization: str | None) -> str:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(authorization)
    return caught.value.message


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def test_a_v2_token_of_the_tenant_for_the_audience_is_accepted(
    verifier: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    claims = await verifier.verify(bearer(issuer.token(version=2)))
    assert (claims["oid"], claims["azp"], claims["iss"]) == (
        SERVICE_OBJECT_ID,
        SERVICE_CLIENT_ID,
        issuer.v2_issuer,
    )


async def test_a_v1_token_of_the_tenant_is_accepted_by_the_issuer_of_its_v1_metadata(
    verifier: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    claims = await verifier.verify(bearer(issuer.token(version=1)))
    assert claims["iss"] == f"https://sts.windows.net/{TENANT_ID}/"


@pytest.mark.parametrize(
    ("token_claims", "problem"),
    [
        ({"audience": "https://management.azure.com"}, "WebPubSubUpstreamAudience"),
        ({"lifetime_s": -120}, "expired"),
        ({"not_before_in_s": 300}, "not valid yet"),
        ({"issuer": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"}, "another tenant"),
    ],
    ids=["audience", "expired", "not-before", "issuer"],
)
async def test_a_token_failing_a_claim_check_is_refused_naming_the_check(
    verifier: EntraTokenVerifier, issuer: LocalIssuer, token_claims: dict[str, object], problem: str
) -> None:
    token = issuer.token(**token_claims)  # type: ignore[arg-type]
    message = await refusal(verifier, bearer(token))
    assert problem in message
    assert token not in message


async def test_clock_skew_of_less_than_a_minute_is_tolerated(
    verifier: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    assert await verifier.verify(bearer(issuer.token(lifetime_s=-30)))


async def test_a_token_signed_by_another_key_under_a_published_key_id_is_refused(
    verifier: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    forger = SigningKey.generate(kid=issuer.key.kid)
    assert "signature does not verify" in await refusal(verifier, bearer(issuer.token(key=forger)))


@pytest.mark.parametrize(
    ("authorization", "problem"),
    [
        (None, "Authorization header is missing"),
        ("Basic dXNlcjpwYXNz", "not a bearer token"),
        ("Bearer not-a-jwt", "not a JWT"),
    ],
)
async def test_a_request_without_a_bearer_jwt_is_refused(
    verifier: EntraTokenVerifier, authorization: str | None, problem: str
) -> None:
    assert problem in await refusal(verifier, authorization)


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
async def test_a_token_not_signed_with_rs256_is_refused(verifier: EntraTokenVerifier, algorithm: str) -> None:
    token = jwt.encode(
        {"aud": UPSTREAM_AUDIENCE}, "k" * 32 if algorithm == "HS256" else None, algorithm=algorithm
    )
    assert "RS256" in await refusal(verifier, bearer(token))


async def test_a_token_without_exp_is_refused(verifier: EntraTokenVerifier, issuer: LocalIssuer) -> None:
    token = issuer.token(exp=None)  # null counts as missing
    assert "exp" in await refusal(verifier, bearer(token))


async def test_an_unknown_key_id_fetches_the_keys_once_more_then_is_refused(
    verifier: EntraTokenVerifier, issuer: LocalIssuer, clock: FakeClock
) -> None:
    await verifier.verify(bearer(issuer.token()))
    clock.now += entra_tokens.REFRESH_INTERVAL_S
    unpublished = SigningKey.generate()
    assert "does not list" in await refusal(verifier, bearer(issuer.token(key=unpublished)))
    assert issuer.requests[issuer.jwks_path] == 2


async def test_a_flood_of_unknown_key_ids_fetches_the_keys_at_most_once_per_interval(
    verifier: EntraTokenVerifier, issuer: LocalIssuer, clock: FakeClock
) -> None:
    await verifier.verify(bearer(issuer.token()))
    for _ in range(20):
        await refusal(verifier, bearer(issuer.token(key=SigningKey.generate())))
    assert issuer.requests[issuer.jwks_path] == 1
    clock.now += entra_tokens.REFRESH_INTERVAL_S
    for _ in range(20):
        await refusal(verifier, bearer(issuer.token(key=SigningKey.generate())))
    assert issuer.requests[issuer.jwks_path] == 2


async def test_a_key_published_after_the_last_fetch_is_found_once_the_interval_has_passed(
    verifier: EntraTokenVerifier, issuer: LocalIssuer, clock: FakeClock
) -> None:
    await verifier.verify(bearer(issuer.token()))
    issuer.rotate()
    clock.now += entra_tokens.REFRESH_INTERVAL_S
    assert await verifier.verify(bearer(issuer.token()))


async def test_concurrent_first_events_share_one_key_fetch(
    verifier: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    tokens = [bearer(issuer.token()) for _ in range(10)]
    await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert issuer.requests[issuer.jwks_path] == 1


async def test_unreachable_keys_are_a_503_so_the_service_retries(
    verifier: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    issuer.fail_with = 500
    with pytest.raises(DependencyFailed) as caught:
        await verifier.verify(bearer(issuer.token()))
    assert TENANT_ID in caught.value.message


async def test_after_a_failed_fetch_the_keys_are_fetched_again_once_the_short_backoff_passed(
    verifier: EntraTokenVerifier, issuer: LocalIssuer, clock: FakeClock
) -> None:
    issuer.fail_with = 500
    with pytest.raises(DependencyFailed):
        await verifier.verify(bearer(issuer.token()))
    issuer.fail_with = None
    clock.now += entra_tokens.RETRY_AFTER_FAILURE_S
    assert await verifier.verify(bearer(issuer.token()))


async def test_old_keys_keep_working_when_their_daily_refresh_fails(
    verifier: EntraTokenVerifier, issuer: LocalIssuer, clock: FakeClock
) -> None:
    await verifier.verify(bearer(issuer.token()))
    clock.now += entra_tokens.MAX_KEY_AGE_S + 1
    issuer.fail_with = 503
    assert await verifier.verify(bearer(issuer.token()))
    assert issuer.requests[issuer.jwks_path] == 1


async def test_keys_are_fetched_again_after_a_day(
    verifier: EntraTokenVerifier, issuer: LocalIssuer, clock: FakeClock
) -> None:
    await verifier.verify(bearer(issuer.token()))
    clock.now += entra_tokens.MAX_KEY_AGE_S + 1
    await verifier.verify(bearer(issuer.token()))
    assert issuer.requests[issuer.jwks_path] == 2


@pytest.mark.parametrize(
    ("version", "caller"),
    [(2, SERVICE_OBJECT_ID), (1, SERVICE_CLIENT_ID), (2, SERVICE_CLIENT_ID)],
    ids=["oid", "appid-v1", "azp-v2"],
)
async def test_an_allowed_caller_is_matched_by_object_id_or_client_id(
    issuer: LocalIssuer, version: int, caller: str
) -> None:
    checker = EntraTokenVerifier(upstream_auth(issuer, caller), 2.0)
    try:
        assert await checker.verify(bearer(issuer.token(version=version)))
    finally:
        await checker.close()


async def test_a_caller_not_in_the_allowed_list_is_refused(issuer: LocalIssuer) -> None:
    checker = EntraTokenVerifier(upstream_auth(issuer, str(uuid.uuid4())), 2.0)
    try:
        assert "WebPubSubUpstreamAllowedCallers" in await refusal(checker, bearer(issuer.token()))
    finally:
        await checker.close()


def test_the_public_cloud_issuers_are_the_v1_and_v2_issuers_of_the_tenant() -> None:
    assert public_cloud_issuers(TENANT_ID) == {
        f"https://sts.windows.net/{TENANT_ID}/",
        f"https://login.microsoftonline.com/{TENANT_ID}/v2.0",
    }


def test_the_default_authority_is_recognised_as_the_public_cloud() -> None:
    auth = UpstreamAuth(
        UPSTREAM_AUDIENCE, TENANT_ID, f"https://login.microsoftonline.com/{TENANT_ID}", frozenset()
    )
    assert auth.public_cloud
