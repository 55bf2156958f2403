"""The `json.webpubsub.azure.v1` wire format (and its reliable variant): client requests in, frames out."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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
    """A frame that is not JSON at all; the connection is closed (1007)."""


def parse_request(text: str) -> ClientRequest:
    """Parse one client text frame; raises InvalidFrame or BadRequest."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFrame(f"frame is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise InvalidFrame("frame must be a JSON object")
    ack_id = _ack_id(message)
    kind = message.get("type")
    if kind == "joinGroup":
        return JoinGroup(_group(message, ack_id), ack_id)
    if kind == "leaveGroup":
        return LeaveGroup(_group(message, ack_id), ack_id)
    if kind == "sendToGroup":
        no_echo = message.get("noEcho", False)
        if not isinstance(no_echo, bool):
            raise BadRequest("noEcho must be true or false", ack_id)
        data, data_type = _payload(message, ack_id)
        return SendToGroup(_group(message, ack_id), data, data_type, no_echo, ack_id)
    if kind == "event":
        name = message.get("event")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_EVENT_NAME or not name.isprintable():
            raise BadRequest(f"event must be a name of 1-{MAX_EVENT_NAME} printable characters", ack_id)
        data, data_type = _payload(message, ack_id)
        return UserEvent(name, data, data_type, ack_id)
    if kind == "sequenceAck":
        seq = message.get("sequenceId")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= _UINT64_MAX:
            raise BadRequest("sequenceId must be an unsigned integer", None)
        return SequenceAck(seq)
    if kind == "ping":
        return Ping()
    raise BadRequest(f"unsupported message type {kind!r}", ack_id)


def _ack_id(message: dict[str, Any]) -> int | None:
    ack_id = message.get("ackId")
    if ack_id is None:
        return None
    if isinstance(ack_id, bool) or not isinstance(ack_id, int) or not 0 <= ack_id <= _UINT64_MAX:
        raise BadRequest("ackId must be an unsigned integer", None)
    return ack_id


def _group(message: dict[str, Any], ack_id: int | None) -> str:
    group = message.get("group")
    if not isinstance(group, str):
        raise BadRequest("group is required: a group name", ack_id)
    try:
        check_group_name(group)
    except InvalidName as exc:
        raise BadRequest(str(exc), ack_id) from None
    return group


def _payload(message: dict[str, Any], ack_id: int | None) -> tuple[bytes, DataType]:
    data_type = message.get("dataType", "json")
    data = message.get("data")
    if data_type == "json":
        if data is None:
            raise BadRequest("data is required (a JSON value other than null) when dataType is json", ack_id)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), "json"
    if data_type == "text":
        if not isinstance(data, str):
            raise BadRequest("data must be a string when dataType is text", ack_id)
        return data.encode("utf-8"), "text"
    if data_type == "binary":
        if not isinstance(data, str):
            raise BadRequest("data must be a base64 string when dataType is binary", ack_id)
        try:
            return base64.b64decode(data, validate=True), "binary"
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"data is not valid base64: {exc}", ack_id) from exc
    raise BadRequest(f"dataType must be json, text or binary, not {data_type!r}", ack_id)


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
