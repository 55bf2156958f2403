"""Connection, group, user and permission state of the emulated service: one `Hub` per hub name.

Pure state plus fan-out; no networking. A `Connection` is a connection as the hub sees it (its id,
user, groups and roles) plus the `Channel` that reaches its client: the WebSocket side
(`session.Session`) registers them, the REST side reads and changes the state through the methods
below. Everything runs on one asyncio loop, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .messages import ServerMessage

log = logging.getLogger(__name__)

Permission = Literal["sendToGroup", "joinLeaveGroup"]


class Channel(Protocol):
    """How the hub reaches a connection's client: deliver a message, or close the connection."""

    async def deliver(self, message: ServerMessage) -> None: ...

    async def close(self, reason: str | None) -> None: ...


class ImmediateChannel(Protocol):
    """A channel that can take a message without waiting (it buffers or writes synchronously)."""

    def deliver_nowait(self, message: ServerMessage) -> None: ...


@dataclass(eq=False)
class Connection:
    """One client connection as the hub sees it."""

    connection_id: str
    hub: str
    user_id: str | None
    channel: Channel
    subprotocol: str | None = None
    roles: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    # Group roles revoked over REST: an explicit deny that wins over a role covering every group.
    denied: set[str] = field(default_factory=set)

    def has_permission(self, permission: Permission, group: str | None = None) -> bool:
        """Role check: `webpubsub.<permission>` covers every group, `.<group>` one group, unless
        that group's permission was revoked."""
        role = f"webpubsub.{permission}"
        if group is not None and f"{role}.{group}" in self.denied:
            return False
        return role in self.roles or (group is not None and f"{role}.{group}" in self.roles)

    def grant(self, permission: Permission, group: str | None) -> None:
        """Grant for one group, or for every group (which also lifts that permission's revokes)."""
        role = _role(permission, group)
        self.roles.add(role)
        if group is None:
            self.denied = {d for d in self.denied if not d.startswith(role + ".")}
        else:
            self.denied.discard(role)

    def revoke(self, permission: Permission, group: str | None) -> None:
        """Revoke for one group (denied even under a role for every group), or the all-groups role."""
        role = _role(permission, group)
        self.roles.discard(role)
        if group is not None:
            self.denied.add(role)


ConnectionFilter = Callable[[Connection], bool]


class Hub:
    """State of one hub."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connections: dict[str, Connection] = {}
        # add_user_to_group is about the user: it applies to the user's current and later connections.
        self._user_groups: dict[str, set[str]] = {}

    # --- connections -------------------------------------------------------------------------
    def add(self, connection: Connection) -> None:
        connection.groups |= self._user_groups.get(connection.user_id or "", set())
        self.connections[connection.connection_id] = connection

    def remove(self, connection_id: str) -> Connection | None:
        return self.connections.pop(connection_id, None)

    def get(self, connection_id: str) -> Connection | None:
        return self.connections.get(connection_id)

    def of_user(self, user_id: str) -> list[Connection]:
        return [c for c in self.connections.values() if c.user_id == user_id]

    def in_group(self, group: str) -> list[Connection]:
        return [c for c in self.connections.values() if group in c.groups]

    def user_exists(self, user_id: str) -> bool:
        return bool(self.of_user(user_id))

    def group_exists(self, group: str) -> bool:
        return bool(self.in_group(group))

    # --- groups ------------------------------------------------------------------------------
    def join(self, connection_id: str, group: str) -> bool:
        """Add a connection to a group; False when the connection does not exist."""
        conn = self.connections.get(connection_id)
        if conn is None:
            return False
        conn.groups.add(group)
        return True

    def leave(self, connection_id: str, group: str) -> None:
        conn = self.connections.get(connection_id)
        if conn is not None:
            conn.groups.discard(group)

    def leave_all(self, connection_id: str) -> None:
        conn = self.connections.get(connection_id)
        if conn is not None:
            conn.groups.clear()

    def add_user_to_group(self, user_id: str, group: str) -> None:
        self._user_groups.setdefault(user_id, set()).add(group)
        for conn in self.of_user(user_id):
            conn.groups.add(group)

    def remove_user_from_group(self, user_id: str, group: str) -> None:
        self._user_groups.get(user_id, set()).discard(group)
        for conn in self.of_user(user_id):
            conn.groups.discard(group)

    def remove_user_from_all_groups(self, user_id: str) -> None:
        self._user_groups.pop(user_id, None)
        for conn in self.of_user(user_id):
            conn.groups.clear()

    # --- permissions -------------------------------------------------------------------------
    def grant(self, connection_id: str, permission: Permission, group: str | None) -> bool:
        conn = self.connections.get(connection_id)
        if conn is None:
            return False
        conn.grant(permission, group)
        return True

    def revoke(self, connection_id: str, permission: Permission, group: str | None) -> None:
        conn = self.connections.get(connection_id)
        if conn is not None:
            conn.revoke(permission, group)

    # --- fan-out -----------------------------------------------------------------------------
    def select(
        self,
        candidates: Iterable[Connection] | None = None,
        *,
        excluded: Iterable[str] = (),
        where: ConnectionFilter | None = None,
    ) -> list[Connection]:
        """Connections among `candidates` (default: all) not excluded and matching `where`."""
        skip = set(excluded)
        pool = self.connections.values() if candidates is None else candidates
        return [c for c in pool if c.connection_id not in skip and (where is None or where(c))]

    async def deliver(self, targets: Iterable[Connection], message: ServerMessage) -> int:
        """Send one message to many connections; a failing client does not stop the rest.

        Channels that can deliver without waiting (`ImmediateChannel`) are served in one pass, which
        keeps a broadcast to thousands of connections cheap; others are awaited concurrently.
        """
        targets = list(targets)
        waiting: list[Connection] = []
        for conn in targets:
            # An ImmediateChannel; getattr is faster than isinstance on a Protocol.
            deliver_nowait = getattr(conn.channel, "deliver_nowait", None)
            if deliver_nowait is not None:
                try:
                    deliver_nowait(message)
                except Exception as exc:  # one broken client must not stop a broadcast
                    log.warning("delivery to %s failed: %r", conn.connection_id, exc)
            else:
                waiting.append(conn)
        if waiting:
            results = await asyncio.gather(
                *(c.channel.deliver(message) for c in waiting), return_exceptions=True
            )
            for conn, result in zip(waiting, results, strict=True):
                if isinstance(result, Exception):
                    log.warning("delivery to %s failed: %r", conn.connection_id, result)
        return len(targets)

    async def close(self, targets: Iterable[Connection], reason: str | None) -> int:
        targets = list(targets)
        await asyncio.gather(*(c.channel.close(reason) for c in targets), return_exceptions=True)
        return len(targets)


def _role(permission: Permission, group: str | None) -> str:
    return f"webpubsub.{permission}" + (f".{group}" if group else "")


class HubRegistry:
    """All hubs of the emulated service; hub names compare case-insensitively."""

    def __init__(self) -> None:
        self._hubs: dict[str, Hub] = {}

    def hub(self, name: str) -> Hub:
        key = name.casefold()
        hub = self._hubs.get(key)
        if hub is None:
            hub = self._hubs[key] = Hub(name)
        return hub

    def __iter__(self) -> Iterator[Hub]:
        return iter(self._hubs.values())
