"""Handlers with fault-injecting fakes: storage failures, oversized messages, and paths that must not
touch storage or the service at all. (Success paths run against real Azurite in tests/integration.)"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import pytest

from tests.events.vectors import AUTH, CONNECTION_STRING, HUB, load
from wps_upstream.cloudevents import Event, parse_event
from wps_upstream.errors import DependencyFailed, PayloadTooLarge, Unauthorized
from wps_upstream.handlers import USER_EVENTS, dispatch
from wps_upstream.ratelimit import RateLimiter
from wps_upstream.services import Services
from wps_upstream.settings import Settings
from wps_upstream.store import MessageTooLarge, StoreUnavailable

SETTINGS = Settings.from_environ(
    {
        "WebPubSubConnectionString": CONNECTION_STRING,
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
)


class FailingMessageStore:
    """Fault injection: every call raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def append(self, **_: Any) -> NoReturn:
        self.calls += 1
        raise self.error

    async def page(self, **_: Any) -> NoReturn:
        self.calls += 1
        raise self.error


class FailingPresenceStore:
    """Fault injection: every call raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def connected(self, **_: Any) -> NoReturn:
        self.calls += 1
        raise self.error

    async def disconnected(self, **_: Any) -> NoReturn:
        self.calls += 1
        raise self.error


class FailingNotifier:
    """Fault injection: every broadcast raises, and is counted."""

    def __init__(self) -> None:
        self.calls = 0

    async def broadcast_message(self, *_: Any, **__: Any) -> NoReturn:
        self.calls += 1
        raise RuntimeError("broadcast must not be reached")

    async def broadcast_presence(self, *_: Any, **__: Any) -> NoReturn:
        self.calls += 1
        raise RuntimeError("broadcast must not be reached")


def services(error: Exception | None = None, rate: float = 0) -> Services:
    error = error or StoreUnavailable("storing a message (injected failure)")
    return Services(
        settings=SETTINGS,
        webhook_auth=AUTH,
        messages=FailingMessageStore(error),  # type: ignore[arg-type]
        presence=FailingPresenceStore(error),  # type: ignore[arg-type]
        notifier=FailingNotifier(),  # type: ignore[arg-type]
        service=None,  # type: ignore[arg-type]
        message_rate=RateLimiter(rate, burst=2 * rate),
    )


def event(name: str) -> Event:
    vector = load(name)
    return parse_event(vector.headers, vector.body, hub=HUB, auth=AUTH)


def calls(deps: Services) -> int:
    return deps.messages.calls + deps.presence.calls + deps.notifier.calls  # type: ignore[attr-defined]


async def test_connect_answers_user_and_subprotocol_without_storage_or_service_calls() -> None:
    deps = services()
    response = await dispatch(event("connect"), deps)
    assert response.status == 200
    assert json.loads(response.body) == {"userId": "u1", "subprotocol": "json.webpubsub.azure.v1"}
    assert calls(deps) == 0


async def test_connect_picks_the_first_offered_json_subprotocol() -> None:
    response = await dispatch(event("connect-reliable-offered"), services())
    assert json.loads(response.body)["subprotocol"] == "json.reliable.webpubsub.azure.v1"


async def test_connect_without_offered_subprotocol_omits_it() -> None:
    response = await dispatch(event("connect-without-subprotocol"), services())
    assert json.loads(response.body) == {"userId": "u1"}


async def test_connect_without_user_is_rejected() -> None:
    with pytest.raises(Unauthorized, match="user id"):
        await dispatch(event("connect-without-user"), services())


async def test_message_not_stored_is_a_5xx_and_not_broadcast() -> None:
    deps = services()
    with pytest.raises(DependencyFailed, match="storing a message") as caught:
        await dispatch(event("message-text"), deps)
    assert caught.value.status == 503
    assert deps.notifier.calls == 0  # type: ignore[attr-defined]


async def test_message_too_large_is_413_naming_sizes() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await dispatch(event("message-binary"), services(MessageTooLarge(1_100_000, 1_000_000)))
    assert caught.value.status == 413
    assert "1100000" in caught.value.message and "1000000" in caught.value.message


async def test_message_without_user_is_rejected_before_storage() -> None:
    deps = services()
    no_user = load("message-text").with_headers(ce_userId=None)
    parsed = parse_event(no_user.headers, no_user.body, hub=HUB, auth=AUTH)
    with pytest.raises(Unauthorized):
        await dispatch(parsed, deps)
    assert calls(deps) == 0


@pytest.mark.parametrize("name", ["connected", "disconnected"])
async def test_presence_write_failure_is_a_5xx_so_the_service_retries(name: str) -> None:
    deps = services()
    with pytest.raises(DependencyFailed) as caught:
        await dispatch(event(name), deps)
    assert caught.value.status == 503
    assert deps.notifier.calls == 0  # type: ignore[attr-defined]


async def test_custom_event_without_handler_is_accepted_with_204_and_no_side_effects() -> None:
    deps = services()
    response = await dispatch(event("custom-event"), deps)
    assert (response.status, response.body) == (204, b"")
    assert calls(deps) == 0


def test_message_is_the_registered_user_event() -> None:
    assert set(USER_EVENTS) == {"message"}
