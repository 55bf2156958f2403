"""The WebSocket side of one client connection: its socket, its protocol's framing, its per-connection state.

A `Session` is built from the `Admission` the handshake settled (who connects, with which groups,
roles and subprotocol) and builds the hub's `Connection` record for itself, as that record's
`Channel`: it frames messages for the client's protocol. With the reliable protocol it numbers
message frames, keeps them until the client acknowledges them, and survives a lost socket for a
while so that the client can reattach and receive what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

from aiohttp import WSCloseCode, web

from . import jsonprotocol
from .hub import Connection
from .messages import ServerMessage

log = logging.getLogger(__name__)

ACK_CACHE_SIZE = 1000
REPLAY_MAX_MESSAGES = 1000
REPLAY_MAX_BYTES = 16 * 1024 * 1024
MAX_UNSENT_BYTES = 16 * 1024 * 1024  # a client that lets this much pile up in its socket buffer is closed
RECOVERY_WINDOW_SECONDS = 30.0


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
    payload: bytes  # the JSON frame with its sequenceId, UTF-8
    size: int


def ws_frame(payload: bytes, *, binary: bool) -> bytes:
    """One unmasked, uncompressed, final WebSocket frame (RFC 6455 5.2), as a server sends it."""
    head = 0x82 if binary else 0x81
    size = len(payload)
    if size < 126:
        return bytes((head, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", head, 126, size) + payload
    return struct.pack("!BBQ", head, 127, size) + payload


def _close_reason(text: str) -> bytes:
    """A close-frame reason: at most 123 bytes of UTF-8, cut on a character boundary."""
    return text.encode("utf-8")[:120].decode("utf-8", "ignore").encode("utf-8")


@lru_cache(maxsize=16)  # a broadcast needs one entry; bounded because frames may be 1 MiB
def _frame_for(message: ServerMessage, kind: ClientKind) -> bytes:
    """The frame of a message for a simple or JSON client (cached: a broadcast builds it once)."""
    if kind is ClientKind.SIMPLE:
        return ws_frame(message.data, binary=message.data_type == "binary")
    return ws_frame(jsonprotocol.message_frame(message).encode("utf-8"), binary=False)


@dataclass(frozen=True)
class Admission:
    """What the handshake settled for a new connection: the token's values, then the connect reply's.

    Before the `connect` event has answered it is also that event's origin (`upstream.EventOrigin`):
    no subprotocol is negotiated yet, and `connect` is event 0.
    """

    connection_id: str
    hub: str
    user_id: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    subprotocol: str | None = None
    connection_state: str | None = None

    def next_event_id(self) -> int:
        return 0


Finisher = Callable[["Session", str], Awaitable[None]]


class Session:
    """The live side of a `hub.Connection` (its `Channel`), and the `EventOrigin` of its events."""

    def __init__(
        self,
        admission: Admission,
        *,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        finisher: Finisher,
    ) -> None:
        self.kind = ClientKind.of(admission.subprotocol)
        self.connection = Connection(
            connection_id=admission.connection_id,
            hub=admission.hub,
            user_id=admission.user_id,
            channel=self,
            subprotocol=admission.subprotocol,
            roles=set(admission.roles),
            groups=set(admission.groups),
        )
        self.ws: web.WebSocketResponse | None = ws
        self._transport = transport
        self._finisher = finisher
        self.reconnection_token = secrets.token_urlsafe(32) if self.kind is ClientKind.RELIABLE else None
        self.connection_state = admission.connection_state
        self.acks = AckCache()
        self._next_event_id = 1  # 0 was the connect event
        self.finished = False
        self.closing_reason: str | None = None
        # reliable protocol
        self._sequence_id = 0
        self._unacked: deque[_Unacked] = deque()
        self._unacked_bytes = 0
        self._expiry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[Any]] = set()

    # --- identity (also what `upstream.EventOrigin` reads) ---------------------------------------
    @property
    def hub(self) -> str:
        return self.connection.hub

    @property
    def connection_id(self) -> str:
        return self.connection.connection_id

    @property
    def user_id(self) -> str | None:
        return self.connection.user_id

    @property
    def subprotocol(self) -> str | None:
        return self.connection.subprotocol

    @property
    def label(self) -> str:
        return f"{self.hub}/{self.connection_id}"

    def next_event_id(self) -> int:
        """Connection-scoped CloudEvents id: 0 was the connect event, then 1, 2, ..."""
        event_id = self._next_event_id
        self._next_event_id += 1
        return event_id

    # --- sending -------------------------------------------------------------------------------
    # Frames are written straight to the transport, synchronously: a broadcast to 1,000 clients then
    # costs one write per client (the frame bytes are built once per message and protocol), frames
    # keep their order without locks, and a client that stops reading is noticed by its buffer size.

    def _write(self, frame: bytes) -> bool:
        """Write one WebSocket frame; False when the socket is gone or closing."""
        ws, transport = self.ws, self._transport
        if ws is None or ws.closed or transport is None or transport.is_closing():
            return False
        transport.write(frame)
        if transport.get_write_buffer_size() > MAX_UNSENT_BYTES and not self.finished:
            self._spawn(
                self.close(f"the client does not read its messages (over {MAX_UNSENT_BYTES} bytes unsent)")
            )
        return True

    def write_text(self, text: str) -> None:
        """Send a control frame (ack, system, pong); lost if the socket is gone, like on the wire."""
        self._write(ws_frame(text.encode("utf-8"), binary=False))

    async def deliver(self, message: ServerMessage) -> None:
        """`Channel.deliver`: frame the message for this client's protocol and send it."""
        self.deliver_nowait(message)

    def deliver_nowait(self, message: ServerMessage) -> None:
        """`ImmediateChannel.deliver_nowait`, used by `Hub.deliver` for fan-out."""
        if self.finished:
            return
        if self.kind is ClientKind.RELIABLE:
            self._deliver_reliably(jsonprotocol.message_frame(message))
        else:
            self._write(_frame_for(message, self.kind))

    def _deliver_reliably(self, frame: str) -> None:
        self._sequence_id += 1
        payload = jsonprotocol.with_sequence_id(frame, self._sequence_id).encode("utf-8")
        self._unacked.append(_Unacked(self._sequence_id, payload, len(payload)))
        self._unacked_bytes += len(payload)
        if len(self._unacked) > REPLAY_MAX_MESSAGES or self._unacked_bytes > REPLAY_MAX_BYTES:
            log.warning(
                "connection %s has %d unacknowledged messages (%d bytes): closing it",
                self.label,
                len(self._unacked),
                self._unacked_bytes,
            )
            self._unacked.clear()
            self._spawn(self.close("too many unacknowledged messages (limit 1000 messages / 16 MiB)"))
            return
        self._write(ws_frame(payload, binary=False))  # if the socket is gone, it waits for a reconnection

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    async def reattach(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> int:
        """Take a new socket, send `connected` again and replay every unacknowledged message in order."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        old = self.ws
        self.ws, self._transport = ws, transport
        if old is not None and not old.closed:
            await old.close(code=WSCloseCode.POLICY_VIOLATION, message=b"replaced by a reconnection")
        # Synchronous from here on: nothing can be delivered between the replay and new messages.
        self.write_text(jsonprotocol.connected(self.connection_id, self.user_id, self.reconnection_token))
        for unacked in self._unacked:
            self._write(ws_frame(unacked.payload, binary=False))
        return len(self._unacked)

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
                self.write_text(jsonprotocol.disconnected(text))
            # 1008 tells a reliable client not to try to recover the connection.
            code = WSCloseCode.POLICY_VIOLATION if self.kind is ClientKind.RELIABLE else WSCloseCode.OK
            with contextlib.suppress(ConnectionError):
                await ws.close(code=code, message=_close_reason(text))
        await self.finish(text)

    async def close_with(self, code: int, reason: str) -> None:
        """Close the socket with a specific WebSocket status (protocol errors), then finish."""
        self.closing_reason = reason
        ws = self.ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError):
                await ws.close(code=code, message=_close_reason(reason))
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
