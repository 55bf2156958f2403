"""One client connection as the service side sees it: its socket, its protocol and its per-connection state.

`ClientConnection` is the `ClientSink` of `hub.Connection`: it frames messages for the client's protocol.
With the reliable protocol it numbers message frames, keeps them until the client acknowledges them,
and survives a lost socket for a while so that the client can reattach and receive what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from . import jsonprotocol
from .hub import Connection, ServerMessage

log = logging.getLogger("wps_emulator.connection")

ACK_CACHE_SIZE = 1000
REPLAY_MAX_MESSAGES = 1000
REPLAY_MAX_BYTES = 16 * 1024 * 1024
RECOVERY_WINDOW_SECONDS = 30.0
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # also tells reliable clients not to try to recover
CLOSE_INTERNAL_ERROR = 1011


class ClientKind(Enum):
    SIMPLE = "simple"
    JSON = "json"
    RELIABLE = "reliable"

    @classmethod
    def of(cls, subprotocol: str | None) -> ClientKind:
        if subprotocol == jsonprotocol.RELIABLE_JSON_PROTOCOL:
            return cls.RELIABLE
        if subprotocol == jsonprotocol.JSON_PROTOCOL:
            return cls.JSON
        return cls.SIMPLE


class AckCache:
    """The ackIds a connection has had processed successfully (the most recent ones)."""

    def __init__(self, size: int = ACK_CACHE_SIZE) -> None:
        self._size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, ack_id: int) -> bool:
        return ack_id in self._ids

    def add(self, ack_id: int) -> None:
        self._ids[ack_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


@dataclass
class _Unacked:
    sequence_id: int
    frame: str
    size: int


Finisher = Callable[["ClientConnection", str], Awaitable[None]]


class ClientConnection:
    """The live side of a `hub.Connection`; implements `ClientSink`."""

    def __init__(
        self,
        *,
        kind: ClientKind,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        finisher: Finisher,
        reconnection_token: str | None = None,
    ) -> None:
        self.kind = kind
        self.ws: web.WebSocketResponse | None = ws
        self._transport = transport
        self._finisher = finisher
        self.reconnection_token = reconnection_token
        self.info: Connection  # set by the endpoint right after construction
        self.connection_state: str | None = None
        self.acks = AckCache()
        self._next_event_id = 0
        self.finished = False
        self.closing_reason: str | None = None
        # reliable protocol
        self._sequence_id = 0
        self._sent_sequence_id = 0
        self._unacked: deque[_Unacked] = deque()
        self._unacked_bytes = 0
        self._replaying = False
        self._expiry: asyncio.TimerHandle | None = None

    # --- identity ------------------------------------------------------------------------------
    @property
    def connection_id(self) -> str:
        return self.info.connection_id

    @property
    def label(self) -> str:
        return f"{self.info.hub}/{self.info.connection_id}"

    def next_event_id(self) -> int:
        """Connection-scoped CloudEvents id: 0 is the connect event, then 1, 2, ..."""
        event_id = self._next_event_id
        self._next_event_id += 1
        return event_id

    @property
    def attached(self) -> bool:
        return self.ws is not None and not self.ws.closed

    # --- sending -------------------------------------------------------------------------------
    async def send_text(self, frame: str) -> None:
        """Send a control frame (ack, system, pong); lost if the socket is gone, like on the wire."""
        ws = self.ws
        if ws is None or ws.closed:
            return
        try:
            await ws.send_str(frame)
        except ConnectionError as exc:
            log.debug("send to %s failed: %s", self.label, exc)

    async def deliver(self, message: ServerMessage) -> None:
        """Frame a server or group message for this client's protocol and send it."""
        if self.finished:
            return
        if self.kind is ClientKind.RELIABLE:
            await self._deliver_reliably(jsonprotocol.message_frame(message))
            return
        ws = self.ws
        if ws is None or ws.closed:
            return
        try:
            if self.kind is ClientKind.JSON:
                await ws.send_str(jsonprotocol.message_frame(message))
            elif message.data_type == "binary":
                await ws.send_bytes(message.data)
            else:
                await ws.send_str(message.data.decode("utf-8"))
        except ConnectionError as exc:
            log.debug("delivery to %s failed: %s", self.label, exc)

    async def _deliver_reliably(self, frame: str) -> None:
        self._sequence_id += 1
        framed = jsonprotocol.with_sequence_id(frame, self._sequence_id)
        size = len(framed.encode("utf-8")) if not framed.isascii() else len(framed)
        self._unacked.append(_Unacked(self._sequence_id, framed, size))
        self._unacked_bytes += size
        if len(self._unacked) > REPLAY_MAX_MESSAGES or self._unacked_bytes > REPLAY_MAX_BYTES:
            log.warning(
                "connection %s has %d unacknowledged messages (%d bytes): closing it",
                self.label,
                len(self._unacked),
                self._unacked_bytes,
            )
            await self.close("too many unacknowledged messages (limit 1000 messages / 16 MiB)")
            return
        if self.attached and not self._replaying and self._sent_sequence_id == self._sequence_id - 1:
            self._sent_sequence_id = self._sequence_id
            with contextlib.suppress(ConnectionError):  # on failure it stays in the replay buffer
                await self.ws.send_str(framed)  # type: ignore[union-attr]

    def acknowledge(self, sequence_id: int) -> None:
        """The client has everything up to `sequence_id` (cumulative); forget those messages."""
        while self._unacked and self._unacked[0].sequence_id <= sequence_id:
            self._unacked_bytes -= self._unacked.popleft().size

    # --- reliable reattachment -------------------------------------------------------------------
    def detach(self, on_expiry: Callable[[], None]) -> None:
        """The socket is gone but the client may come back within the recovery window."""
        self.ws = None
        self._transport = None
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(RECOVERY_WINDOW_SECONDS, on_expiry)

    async def reattach(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> int:
        """Take a new socket, send `connected` again and replay every unacknowledged message in order."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        old = self.ws
        self.ws, self._transport = ws, transport
        if old is not None and not old.closed:
            await old.close(code=CLOSE_POLICY, message=b"replaced by a reconnection")
        await self.send_text(
            jsonprotocol.connected(self.connection_id, self.info.user_id, self.reconnection_token)
        )
        self._sent_sequence_id = self._unacked[0].sequence_id - 1 if self._unacked else self._sequence_id
        replayed = 0
        self._replaying = True
        try:
            while self.ws is ws and not ws.closed:
                pending = next((u for u in self._unacked if u.sequence_id > self._sent_sequence_id), None)
                if pending is None:
                    break
                self._sent_sequence_id = pending.sequence_id
                await ws.send_str(pending.frame)
                replayed += 1
            self._sent_sequence_id = self._sequence_id
        except ConnectionError:
            pass
        finally:
            self._replaying = False
        return replayed

    # --- closing -------------------------------------------------------------------------------
    async def close(self, reason: str | None) -> None:
        """Close for good (REST close, upstream failure, limits): tell JSON clients why, then finish."""
        if self.finished:
            return
        text = reason or ""
        self.closing_reason = text
        ws = self.ws
        if ws is not None and not ws.closed:
            if self.kind is not ClientKind.SIMPLE:
                await self.send_text(jsonprotocol.disconnected(text))
            code = CLOSE_POLICY if self.kind is ClientKind.RELIABLE else CLOSE_NORMAL
            with contextlib.suppress(ConnectionError):
                await ws.close(code=code, message=text.encode("utf-8")[:120])
        await self.finish(text)

    async def close_with(self, code: int, reason: str) -> None:
        """Close the socket with a specific WebSocket status (protocol errors), then finish."""
        self.closing_reason = reason
        ws = self.ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError):
                await ws.close(code=code, message=reason.encode("utf-8")[:120])
        await self.finish(reason)

    async def finish(self, reason: str) -> None:
        """Leave the hub and send the `disconnected` event; idempotent."""
        if self.finished:
            return
        self.finished = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._unacked.clear()
        await self._finisher(self, reason)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (test hook: simulates a network failure)."""
        if isinstance(self._transport, asyncio.Transport):
            self._transport.abort()
