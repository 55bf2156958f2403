"""Events to the hub's event handlers: CloudEvents HTTP binary mode, signed, abuse-protected, retried.

One `Upstream` per process holds the HTTP client and the abuse-protection cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import aiohttp
from multidict import CIMultiDictProxy

log = logging.getLogger(__name__)

EventKind = Literal["sys", "user"]
VALIDATION_CACHE_SECONDS = 60.0
RETRYABLE_STATUSES = frozenset({408}) | frozenset(range(500, 600))


class UpstreamError(Exception):
    """The event handler could not be reached, or failed abuse protection."""


def signature(access_key: str, connection_id: str) -> str:
    """`ce-signature`: sha256=hex(HMAC-SHA256(key = access key as UTF-8, message = connection id))."""
    digest = hmac.new(access_key.encode("utf-8"), connection_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class EventOrigin(Protocol):
    """The connection an event comes from, as the CloudEvents headers describe it."""

    @property
    def hub(self) -> str: ...

    @property
    def connection_id(self) -> str: ...

    @property
    def user_id(self) -> str | None: ...

    @property
    def subprotocol(self) -> str | None: ...

    @property
    def connection_state(self) -> str | None: ...

    def next_event_id(self) -> int:
        """`ce-id`: counted per connection, 0 for `connect`; taken only for events that are sent."""
        ...


@dataclass(frozen=True)
class UpstreamEvent:
    """One event of one connection, ready to send."""

    url: str
    validation_url: str  # the URL template with {event} = validate
    kind: EventKind
    name: str
    hub: str
    connection_id: str
    event_id: int
    body: bytes
    content_type: str
    user_id: str | None = None
    subprotocol: str | None = None
    connection_state: str | None = None

    @property
    def ce_type(self) -> str:
        return f"azure.webpubsub.{self.kind}.{self.name}"


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: bytes
    content_type: str | None  # None when the handler sent no Content-Type
    connection_state: str | None  # None when the handler did not set ce-connectionState

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Validation:
    valid_until: float = 0.0
    pending: asyncio.Future[None] | None = field(default=None)


class Upstream:
    """HTTP client toward event handlers."""

    def __init__(
        self,
        *,
        access_key: str,
        origin: str,
        timeout: float,
        retry_delays: tuple[float, ...] = (1.0, 3.0, 5.0),
    ) -> None:
        self._access_key = access_key
        self._origin = origin
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry_delays = retry_delays
        self._session: aiohttp.ClientSession | None = None
        self._validations: dict[str, _Validation] = {}
        self._signatures: dict[str, str] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Cookies from handlers are not kept (not emulated); no connection limit per host because
            # one slow handler must not queue the events of every other connection.
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(limit=0),
                timeout=self._timeout,
            )
        return self._session

    def headers(self, event: UpstreamEvent) -> dict[str, str]:
        """The CloudEvents headers of an event."""
        sig = self._signatures.get(event.connection_id)
        if sig is None:
            sig = self._signatures[event.connection_id] = signature(self._access_key, event.connection_id)
            if len(self._signatures) > 100_000:  # bounded: a cache, not a registry
                self._signatures.clear()
        headers = {
            "WebHook-Request-Origin": self._origin,
            "Content-Type": event.content_type,
            "ce-specversion": "1.0",
            "ce-awpsversion": "1.0",
            "ce-type": event.ce_type,
            "ce-source": f"/hubs/{event.hub}/client/{event.connection_id}",
            "ce-id": str(event.event_id),
            "ce-time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ce-hub": event.hub,
            "ce-connectionId": event.connection_id,
            "ce-eventName": event.name,
            "ce-signature": sig,
        }
        if event.user_id:
            headers["ce-userId"] = event.user_id
        if event.subprotocol:
            headers["ce-subprotocol"] = event.subprotocol
        if event.connection_state is not None:
            headers["ce-connectionState"] = event.connection_state
        return headers

    async def send(self, event: UpstreamEvent) -> UpstreamResponse:
        """Validate the endpoint if needed, then POST the event with retries; raises UpstreamError."""
        await self._ensure_validated(event.validation_url)
        headers = self.headers(event)
        started = time.monotonic()
        response = await self._with_retries(
            lambda session: session.post(event.url, data=event.body, headers=headers),
            what=f"{event.name} event of {event.hub}/{event.connection_id} #{event.event_id} to {event.url}",
        )
        status, body, resp_headers = response
        log.info(
            "upstream %s %s/%s ce-id=%d -> %d (%.0f ms) %s",
            event.name,
            event.hub,
            event.connection_id,
            event.event_id,
            status,
            (time.monotonic() - started) * 1000,
            event.url,
        )
        states = resp_headers.getall("ce-connectionState", [])
        return UpstreamResponse(
            status=status,
            body=body,
            content_type=resp_headers.get("Content-Type"),
            connection_state=states[0] if len(states) == 1 else None,
        )

    async def _with_retries(
        self, request: Callable[[aiohttp.ClientSession], Any], *, what: str
    ) -> tuple[int, bytes, CIMultiDictProxy[str]]:
        """Run `request(session)`; retry on 408, 5xx and connection errors after the configured delays."""
        delays = list(self._retry_delays)
        while True:
            try:
                async with request(self._client()) as resp:
                    body = await resp.read()
                    if resp.status in RETRYABLE_STATUSES and delays:
                        log.warning("upstream %s -> %d; retrying in %.0f s", what, resp.status, delays[0])
                    else:
                        return resp.status, body, resp.headers
            except TimeoutError as exc:
                raise UpstreamError(f"{what}: no answer within {self._timeout.total:.0f} s") from exc
            except aiohttp.ClientError as exc:
                if not delays:
                    raise UpstreamError(f"{what}: {exc}") from exc
                log.warning("upstream %s failed (%s); retrying in %.0f s", what, exc, delays[0])
            await asyncio.sleep(delays.pop(0))

    async def _ensure_validated(self, url: str) -> None:
        """Abuse protection: OPTIONS (GET if OPTIONS is 404) must allow our origin; success is cached."""
        state = self._validations.setdefault(url, _Validation())
        if state.valid_until > time.monotonic():
            return
        if state.pending is not None:
            await asyncio.shield(state.pending)
            return
        state.pending = asyncio.get_running_loop().create_future()
        try:
            await self._validate(url)
            state.valid_until = time.monotonic() + VALIDATION_CACHE_SECONDS
            state.pending.set_result(None)
        except BaseException as exc:
            state.pending.set_exception(exc)
            state.pending.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            state.pending = None

    async def _validate(self, url: str) -> None:
        headers = {"WebHook-Request-Origin": self._origin, "ce-awpsversion": "1.0"}
        started = time.monotonic()
        status, _, resp_headers = await self._with_retries(
            lambda session: session.options(url, headers=headers), what=f"abuse protection OPTIONS {url}"
        )
        method = "OPTIONS"
        if status == 404:
            method = "GET"
            status, _, resp_headers = await self._with_retries(
                lambda session: session.get(url, headers=headers), what=f"abuse protection GET {url}"
            )
        allowed = [v.strip() for v in resp_headers.getall("WebHook-Allowed-Origin", [])]
        log.info(
            "upstream validate %s %s -> %d (%.0f ms) allowed=%s",
            method,
            url,
            status,
            (time.monotonic() - started) * 1000,
            allowed,
        )
        if not 200 <= status < 300:
            raise UpstreamError(f"abuse protection {method} {url} answered {status}")
        if not any(v == "*" or v.casefold() == self._origin.casefold() for v in allowed):
            raise UpstreamError(
                f"abuse protection {method} {url}: WebHook-Allowed-Origin {allowed} allows neither * nor "
                f"{self._origin}"
            )
