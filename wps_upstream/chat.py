"""The chat's message shapes: what clients receive in broadcasts and from /api/messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from wps_upstream.payload import Payload


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One stored chat message; `payload.data` holds exactly the bytes that were received."""

    id: str  # opaque, unique within the hub, stable across redeliveries
    user_id: str
    connection_id: str
    time: str  # ISO-8601 UTC with milliseconds and Z
    payload: Payload
    user_name: str | None = None  # the display name, when App Service Authentication gave one

    def to_json(self) -> dict[str, Any]:
        """The message shape used for broadcasts and /api/messages; `data` is the payload's value."""
        message: dict[str, Any] = {"type": "message", "id": self.id, "userId": self.user_id}
        if self.user_name is not None:
            message["userName"] = self.user_name
        return message | {
            "connectionId": self.connection_id,
            "time": self.time,
            "dataType": self.payload.data_type,
            "data": self.payload.value,
        }


UserState = Literal["online", "offline", "unchanged"]


@dataclass(frozen=True, slots=True)
class PresenceNotice:
    """A connection of a user came or went; `user` says what that did to the user: came online (first
    connection), went offline (last connection gone) or unchanged."""

    event: Literal["connected", "disconnected"]
    user_id: str
    connection_id: str
    time: str
    user: UserState
    reason: str | None = None
    user_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The notice shape; `userName` when known, `reason` only on disconnects that have one."""
        notice: dict[str, Any] = {"type": "presence", "event": self.event, "userId": self.user_id}
        if self.user_name is not None:
            notice["userName"] = self.user_name
        notice |= {"connectionId": self.connection_id, "time": self.time, "user": self.user}
        if self.reason is not None:
            notice["reason"] = self.reason
        return notice
