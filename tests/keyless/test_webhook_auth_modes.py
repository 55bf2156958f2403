"""Who may call the webhook in each mode: a key (signature), Entra tokens, both (both must pass), or neither
(every request refused, saying why). Real token checks against the local issuer; the fixed event vectors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.events.vectors import DEFAULT_KEY, ORIGIN, EventVector, load
from tests.keyless.local_issuer import TENANT_ID, UPSTREAM_AUDIENCE, LocalIssuer
from wps_upstream.cloudevents import Headers, UserEvent, parse_event, preflight
from wps_upstream.entra_tokens import EntraTokenVerifier
from wps_upstream.errors import ConfigurationError, Unauthorized
from wps_upstream.settings import UpstreamAuth
from wps_upstream.webhook_auth import AUTHORIZATION_HEADER, WebhookAuth


@pytest.fixture
async def tokens(issuer: LocalIssuer) -> AsyncIterator[EntraTokenVerifier]:
    verifier = EntraTokenVerifier(
        UpstreamAuth(UPSTREAM_AUDIENCE, TENANT_ID, issuer.authority, frozenset()), 2.0
    )
    yield verifier
    await verifier.close()


def with_token(vector: EventVector, issuer: LocalIssuer) -> EventVector:
    return vector.with_headers(Authorization=f"Bearer {issuer.token()}")


async def receive(auth: WebhookAuth, vector: EventVector) -> UserEvent:
    checked = await auth.authenticate(Headers(vector.headers).get(AUTHORIZATION_HEADER))
    event = parse_event(vector.headers, vector.body, hub="chat", auth=checked)
    assert isinstance(event, UserEvent)
    return event


async def test_with_a_key_only_a_signed_event_passes_without_a_token() -> None:
    event = await receive(WebhookAuth.of({ORIGIN}, DEFAULT_KEY), load("message-text"))
    assert event.context.connection_id == "conn1"


async def test_with_tokens_only_an_event_with_a_valid_token_passes_without_a_signature(
    tokens: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    vector = with_token(load("message-text").with_headers(ce_signature=None), issuer)
    event = await receive(WebhookAuth.of({ORIGIN}, None, tokens), vector)
    assert event.context.connection_id == "conn1"


async def test_an_event_whose_token_was_not_checked_is_refused(tokens: EntraTokenVerifier) -> None:
    vector = load("message-text")
    with pytest.raises(Unauthorized):
        parse_event(vector.headers, vector.body, hub="chat", auth=WebhookAuth.of({ORIGIN}, None, tokens))


async def test_with_both_a_valid_token_and_a_forged_signature_is_refused(
    tokens: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    vector = with_token(load("signature-forged"), issuer)
    with pytest.raises(Unauthorized) as caught:
        await receive(WebhookAuth.of({ORIGIN}, DEFAULT_KEY, tokens), vector)
    assert "ce-signature" in caught.value.message


async def test_with_both_a_valid_signature_without_a_token_is_refused(tokens: EntraTokenVerifier) -> None:
    with pytest.raises(Unauthorized) as caught:
        await receive(WebhookAuth.of({ORIGIN}, DEFAULT_KEY, tokens), load("message-text"))
    assert "Authorization" in caught.value.message


async def test_with_both_an_event_with_a_token_and_a_signature_passes(
    tokens: EntraTokenVerifier, issuer: LocalIssuer
) -> None:
    event = await receive(
        WebhookAuth.of({ORIGIN}, DEFAULT_KEY, tokens), with_token(load("message-text"), issuer)
    )
    assert event.context.user_id == "u1"


async def test_with_neither_every_event_is_refused_naming_the_settings() -> None:
    with pytest.raises(ConfigurationError) as caught:
        await receive(WebhookAuth.of({ORIGIN}, None), load("message-text"))
    assert "WebPubSubUpstreamAudience" in caught.value.message
    assert "WebPubSubConnectionString" in caught.value.message


def test_with_neither_the_abuse_protection_check_is_refused_too() -> None:
    with pytest.raises(ConfigurationError):
        preflight(load("preflight").headers, WebhookAuth.of({ORIGIN}, None))


def test_with_tokens_the_abuse_protection_check_needs_no_token(tokens: EntraTokenVerifier) -> None:
    response = preflight(load("preflight").headers, WebhookAuth.of({ORIGIN}, None, tokens))
    assert response.status == 200
