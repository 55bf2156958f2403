"""The `json.webpubsub.azure.v1` wire format (and its reliable variant): client requests in, frames out."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import jsontext
from .messages import DataType, ServerMessage
from .names import InvalidName, check_group_name

JSON_PROTOCOL = "json.webpubsub.azure.v1"
RELIABLE_JSON_PROTOCOL = "json.reliable.webpubsub.azure.v1"
SUPPORTED_PROTOCOLS = (JSON_PROTOCOL, RELIABLE_JSON_PROTOCOL)
MAX_EVENT_NAME = 128
_UINT64_MAX = 2**64 - 1


# --- client -> service --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinGroup:
    group: str
    ack_id: int | None


@dataclass(frozen=True)
class LeaveGroup:
    group: str
    ack_id: int | None


@dataclass(frozen=True)
class SendToGroup:
    group: str
    data: bytes
    data_type: DataType
    no_echo: bool
    ack_id: int | None


@dataclass(frozen=True)
class UserEvent:
    event: str
    data: bytes
    data_type: DataType
    ack_id: int | None


@dataclass(frozen=True)
class SequenceAck:
    sequence_id: int


@dataclass(frozen=True)
class Ping:
    pass


AckableRequest = JoinGroup | LeaveGroup | SendToGroup | UserEvent
ClientRequest = AckableRequest | SequenceAck | Ping


class BadRequest(Exception):
    """A JSON frame that is not a valid request; answered with a BadRequest ack when it has an ackId."""

    def __init__(self, message: str, ack_id: int | None) -> None:
        super().__init__(message)
        self.ack_id = ack_id


class InvalidFrame(Exception):
    """A frame that is not a JSON object (strict JSON: no NaN, no trailing commas); closed with 1007."""


class _Frame:
    """A client frame's members, each kept as its exact JSON text until a field is read."""

    def __init__(self, text: str) -> None:
        try:
            self._members = jsontext.members(text)
        except jsontext.JsonTextError as exc:
            raise InvalidFrame(f"frame is not a JSON object: {exc}") from exc

    def get(self, name: str, default: Any = None) -> Any:
        """A member's value if it is a string, number, true, false or null; `jsontext.NESTED` otherwise."""
        text = self._members.get(name)
        return default if text is None else jsontext.scalar(text)

    def text(self, name: str) -> str | None:
        """A member's value exactly as the client wrote it."""
        return self._members.get(name)


def parse_request(text: str) -> ClientRequest:
    """Parse one client text frame; raises InvalidFrame or BadRequest."""
    frame = _Frame(text)
    ack_id = _ack_id(frame)
    kind = frame.get("type")
    parse = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise BadRequest(f"unsupported message type {(frame.text('type') or 'none')[:64]}", ack_id)
    return parse(frame, ack_id)


def _join_group(frame: _Frame, ack_id: int | None) -> JoinGroup:
    return JoinGroup(_group(frame, ack_id), ack_id)


def _leave_group(frame: _Frame, ack_id: int | None) -> LeaveGroup:
    return LeaveGroup(_group(frame, ack_id), ack_id)


def _send_to_group(frame: _Frame, ack_id: int | None) -> SendToGroup:
    no_echo = frame.get("noEcho", False)
    if not isinstance(no_echo, bool):
        raise BadRequest("noEcho must be true or false", ack_id)
    data, data_type = _payload(frame, ack_id)
    return SendToGroup(_group(frame, ack_id), data, data_type, no_echo, ack_id)


def _user_event(frame: _Frame, ack_id: int | None) -> UserEvent:
    name = frame.get("event")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_EVENT_NAME or not name.isprintable():
        raise BadRequest(f"event must be a name of 1-{MAX_EVENT_NAME} printable characters", ack_id)
    data, data_type = _payload(frame, ack_id)
    return UserEvent(name, data, data_type, ack_id)


def _sequence_ack(frame: _Frame, ack_id: int | None) -> SequenceAck:
    sequence_id = frame.get("sequenceId")
    if not _is_uint64(sequence_id):
        raise BadRequest("sequenceId must be an unsigned integer", None)
    return SequenceAck(sequence_id)


def _ping(frame: _Frame, ack_id: int | None) -> Ping:
    return Ping()


_PARSERS: dict[str, Callable[[_Frame, int | None], ClientRequest]] = {
    "joinGroup": _join_group,
    "leaveGroup": _leave_group,
    "sendToGroup": _send_to_group,
    "event": _user_event,
    "sequenceAck": _sequence_ack,
    "ping": _ping,
}


def _is_uint64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _UINT64_MAX


def _ack_id(frame: _Frame) -> int | None:
    ack_id = frame.get("ackId")
    if ack_id is None:
        return None
    if not _is_uint64(ack_id):
        raise BadRequest("ackId must be an unsigned integer", None)
    return int(ack_id)


def _group(frame: _Frame, ack_id: int | None) -> str:
    group = frame.get("group")
    if not isinstance(group, str):
        raise BadRequest("group is required: a group name", ack_id)
    try:
        check_group_name(group)
    except InvalidName as exc:
        raise BadRequest(str(exc), ack_id) from None
    return group


def _payload(frame: _Frame, ack_id: int | None) -> tuple[bytes, DataType]:
    data_type = frame.get("dataType", "json")
    if data_type == "json":
        data = frame.text("data")
        if data is None or data == "null":
            raise BadRequest("data is required (a JSON value other than null) when dataType is json", ack_id)
        return data.encode("utf-8"), "json"  # exactly as the client wrote it
    if data_type == "text":
        return _text(frame.get("data"), ack_id), "text"
    if data_type == "binary":
        return _binary(frame.get("data"), ack_id), "binary"
    raise BadRequest(
        f"dataType must be json, text or binary, not {(frame.text('dataType') or '')[:64]}", ack_id
    )


def _text(data: Any, ack_id: int | None) -> bytes:
    if not isinstance(data, str):
        raise BadRequest("data must be a string when dataType is text", ack_id)
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "data holds an unpaired surrogate escape (such as \\ud800): text must be valid Unicode", ack_id
        ) from None


def _binary(data: Any, ack_id: int | None) -> bytes:
    if not isinstance(data, str):
        raise BadRequest("data must be a base64 string when dataType is binary", ack_id)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"data is not valid base64: {exc}", ack_id) from exc


# --- service -> client --------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ack(ack_id: int, error: str | None = None, message: str = "") -> str:
    if error is None:
        return _dumps({"type": "ack", "ackId": ack_id, "success": True})
    return _dumps(
        {"type": "ack", "ackId": ack_id, "success": False, "error": {"name": error, "message": message}}
    )


def connected(connection_id: str, user_id: str | None, reconnection_token: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "system", "event": "connected", "connectionId": connection_id}
    if user_id is not None:
        frame["userId"] = user_id
    if reconnection_token is not None:
        frame["reconnectionToken"] = reconnection_token
    return _dumps(frame)


def disconnected(reason: str) -> str:
    return _dumps({"type": "system", "event": "disconnected", "message": reason})


PONG = _dumps({"type": "pong"})


@lru_cache(maxsize=16)  # a broadcast needs one entry; bounded because frames may be 1 MiB
def message_frame(message: ServerMessage) -> str:
    """The JSON frame of a server or group message (cached: a broadcast builds it once for all)."""
    if message.data_type == "json":
        data = message.data.decode("utf-8")  # already serialized JSON; embedded as is
    elif message.data_type == "text":
        data = _dumps(message.data.decode("utf-8"))
    else:
        data = _dumps(base64.b64encode(message.data).decode("ascii"))
    head: dict[str, Any] = {"type": "message", "from": message.source}
    if message.source == "group":
        head["group"] = message.group
        if message.from_user_id is not None:
            head["fromUserId"] = message.from_user_id
    head["dataType"] = message.data_type
    return _dumps(head)[:-1] + ',"data":' + data + "}"


def with_sequence_id(frame: str, sequence_id: int) -> str:
    """A message frame with `sequenceId` added (reliable protocol)."""
    return '{"sequenceId":' + str(sequence_id) + "," + frame[1:]
