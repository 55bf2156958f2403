"""The Web PubSub upstream protocol: CloudEvents over HTTP (binary mode), from bytes and headers to typed
events, and typed responses back. No Azure Functions import, so it is tested without a host.

See docs/app.md ("The event handler in detail") and the protocol reference for the rules implemented here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from itertools import chain
from typing import Any

from wps_upstream import ids
from wps_upstream.errors import BadRequest, UnsupportedMediaType
from wps_upstream.payload import (
    CONTENT_TYPES,
    REPLY_CONTENT_TYPES,
    DataType,
    InvalidPayload,
    Payload,
    json_dumps,
    parse_json,
)
from wps_upstream.webhook_auth import ALLOWED_ORIGIN_HEADER, ORIGIN_HEADER, SIGNATURE_HEADER, WebhookAuth

logger = logging.getLogger(__name__)

USER_PREFIX = "azure.webpubsub.user."
SYSTEM_TYPES = {
    "azure.webpubsub.sys.connect": "connect",
    "azure.webpubsub.sys.connected": "connected",
    "azure.webpubsub.sys.disconnected": "disconnected",
}
# The headers that make a request a Web PubSub event (ce-awpsversion and ce-specversion are optional).
EVENT_HEADERS = ("ce-type", "ce-hub", "ce-connectionId")
STATE_HEADER = "ce-connectionState"
_EVENT_HEADER_KEYS = tuple((name, name.lower()) for name in EVENT_HEADERS)
_STATE_KEY = STATE_HEADER.lower()
_ORIGIN_KEY = ORIGIN_HEADER.lower()
_SIGNATURE_KEY = SIGNATURE_HEADER.lower()
USER_NAME_STATE = "userName"  # the connection state entry that holds the user's display name
JSON_SUBPROTOCOLS = ("json.webpubsub.azure.v1", "json.reliable.webpubsub.azure.v1")


class EventKind(Enum):
    """What a request is, decided once from `ce-type` before anything else looks at it."""

    CONNECT = "connect"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    USER = "user"
    UNKNOWN = "unknown"


def classify(ce_type: str | None) -> EventKind:
    """Map a `ce-type` value to the kind of event (UNKNOWN for anything this app does not handle)."""
    if not ce_type:
        return EventKind.UNKNOWN
    if (system := _SYSTEM_KINDS.get(ce_type)) is not None:
        return system
    if ce_type.startswith(USER_PREFIX) and len(ce_type) > len(USER_PREFIX):
        return EventKind.USER
    return EventKind.UNKNOWN


_SYSTEM_KINDS = {ce_type: EventKind(kind) for ce_type, kind in SYSTEM_TYPES.items()}


# The event types are plain slotted dataclasses, not frozen ones: several are built for every event, and
# a frozen dataclass pays an object.__setattr__ call per field. Treat them as values all the same.


@dataclass(slots=True)
class EventContext:
    """The CloudEvents attributes every event carries (read from the ce-* headers)."""

    kind: EventKind
    hub: str
    connection_id: str
    event_id: str
    event_name: str
    user_id: str | None
    time: str | None
    origin: str
    subprotocol: str | None
    states: dict[str, Any] = field(default_factory=dict)

    @property
    def user_name(self) -> str | None:
        """The display name the connect handler kept in the connection state, if any."""
        name = self.states.get(USER_NAME_STATE)
        return ids.display_name(name) if isinstance(name, str) else None


@dataclass(slots=True)
class ConnectEvent:
    """A client is connecting (blocking): the app accepts or rejects it."""

    context: EventContext
    claims: dict[str, list[str]]
    query: dict[str, list[str]]
    headers: dict[str, list[str]]
    subprotocols: tuple[str, ...]


@dataclass(slots=True)
class ConnectedEvent:
    """A connection is established (non-blocking)."""

    context: EventContext


@dataclass(slots=True)
class DisconnectedEvent:
    """A connection has ended (non-blocking)."""

    context: EventContext
    reason: str | None


@dataclass(slots=True)
class UserEvent:
    """A client sent an event (blocking); the payload was checked for its data type once, here."""

    context: EventContext
    payload: Payload


Event = ConnectEvent | ConnectedEvent | DisconnectedEvent | UserEvent


@dataclass(slots=True)
class EventResponse:
    """What to answer the service: status, body, content type and extra headers."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


# --- headers --------------------------------------------------------------------------------------


class Headers:
    """Case-insensitive read-only view of request headers."""

    __slots__ = ("by_name",)

    def __init__(self, headers: Mapping[str, str]) -> None:
        # The headers by lower-case name (for lookups of names that are lower-case already).
        self.by_name: Mapping[str, str] = {name.lower(): value for name, value in headers.items()}

    @classmethod
    def lowercased(cls, by_name: Mapping[str, str]) -> Headers:
        """A view of headers that are keyed by lower-case name already, used as they are (no copy)."""
        view = cls.__new__(cls)
        view.by_name = by_name
        return view

    def get(self, name: str) -> str | None:
        return self.by_name.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.by_name


# --- connection state -----------------------------------------------------------------------------


def decode_state(value: str | None) -> dict[str, Any]:
    """The state map from ce-connectionState; missing, invalid or non-object state is an empty map."""
    if not value:
        return {}
    state = _decoded_state(value)
    return {} if state is None else dict(state)  # a copy: the caller may change it


@functools.lru_cache(maxsize=1024)
def _decoded_state(value: str) -> dict[str, Any] | None:
    """The state object of a header value, decoded once: the service sends the same value with every event
    of a connection until the app changes it. None when it is not a base64 JSON object."""
    try:
        state = parse_json(base64.b64decode(value, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        logger.warning("Ignoring a ce-connectionState that is not base64 JSON")
        return None
    if not isinstance(state, dict):
        logger.warning("Ignoring a ce-connectionState that is not a JSON object")
        return None
    return state


def encode_state(states: Mapping[str, Any]) -> str:
    """base64 of compact JSON (no spaces, insertion order), the form the service SDKs use."""
    text = json_dumps(states if type(states) is dict else dict(states))
    return binascii.b2a_base64(text.encode("utf-8"), newline=False).decode("ascii")


# --- parsing --------------------------------------------------------------------------------------


def _view(headers: Mapping[str, str] | Headers) -> Headers:
    return headers if isinstance(headers, Headers) else Headers(headers)


def preflight(headers: Mapping[str, str] | Headers, auth: WebhookAuth) -> EventResponse:
    """Answer the abuse-protection OPTIONS request: echo an allowed origin, refuse others."""
    origin = auth.check_origin(_view(headers).get(ORIGIN_HEADER))
    return EventResponse(200, headers=((ALLOWED_ORIGIN_HEADER, origin),))


def parse_event(headers: Mapping[str, str] | Headers, body: bytes, *, hub: str, auth: WebhookAuth) -> Event:
    """Turn a POSTed request into a typed event, refusing it in this order with a clear error:
    not a Web PubSub event (400); origin missing (400) or not allowed (403); signature missing or invalid
    (401); another hub (400); unknown ce-type (400); malformed body (400) or unsupported type (415).
    """
    values = _view(headers).by_name
    if not (values.get("ce-type") and values.get("ce-hub") and values.get("ce-connectionid")):
        missing = next(name for name, key in _EVENT_HEADER_KEYS if not values.get(key))
        raise BadRequest(f"Not a Web PubSub event: the {missing} header is missing.")
    origin = auth.check_origin(values.get(_ORIGIN_KEY))
    connection_id = values["ce-connectionid"]
    auth.check_signature(values.get(_SIGNATURE_KEY), connection_id)
    event_hub = values["ce-hub"]
    if event_hub != hub and event_hub.lower() != hub.lower():
        raise BadRequest(
            f"This app serves hub {hub!r}, not {event_hub!r}; check the hub's event handler URL."
        )
    context = _context(values, origin)
    if context.kind is EventKind.CONNECT:
        return _connect(context, body)
    if context.kind is EventKind.CONNECTED:
        _json_object(body, "connected", allow_empty=True)
        return ConnectedEvent(context)
    if context.kind is EventKind.DISCONNECTED:
        reason = _json_object(body, "disconnected", allow_empty=True).get("reason")
        return DisconnectedEvent(context, reason if isinstance(reason, str) else None)
    return _user_event(context, values, body)


def _context(values: Mapping[str, str], origin: str) -> EventContext:
    """The event's attributes (`values`: the headers by lower-case name); 400 for a ce-type this app does
    not handle."""
    ce_type = values["ce-type"]
    kind = classify(ce_type)
    if kind is EventKind.UNKNOWN:
        raise BadRequest(f"Unsupported event type {ce_type!r}.")
    user_id = values.get("ce-userid")
    return EventContext(
        kind=kind,
        hub=values["ce-hub"],
        connection_id=ids.connection_id(values["ce-connectionid"]),
        event_id=values.get("ce-id") or "",
        event_name=values.get("ce-eventname")
        or (ce_type[len(USER_PREFIX) :] if kind is EventKind.USER else kind.value),
        user_id=ids.event_user_id(user_id) if user_id else None,
        time=values.get("ce-time"),
        origin=origin,
        subprotocol=values.get("ce-subprotocol") or None,
        states=decode_state(state) if (state := values.get(_STATE_KEY)) else {},
    )


def _user_event(context: EventContext, values: Mapping[str, str], body: bytes) -> UserEvent:
    if not context.event_id:
        raise BadRequest("The ce-id header is missing; user events need an id.")
    data_type = _data_type(values.get("content-type"))
    try:
        payload = Payload.decode(data_type, body)
    except InvalidPayload as error:
        raise BadRequest(f"The message was refused: {error}.") from None
    return UserEvent(context, payload)


def _json_object(body: bytes, what: str, *, allow_empty: bool = False) -> dict[str, Any]:
    if allow_empty and not body.strip():
        return {}
    try:
        value = parse_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(f"The {what} event body is not valid UTF-8 JSON.") from None
    except InvalidPayload as error:
        raise BadRequest(f"The {what} event body is refused: {error}.") from None
    if not isinstance(value, dict):
        raise BadRequest(f"The {what} event body must be a JSON object.")
    return value


def _string_lists(value: Any, name: str) -> dict[str, list[str]]:
    if value is None:
        return {}
    # Parsed JSON holds exact types (no subclasses), so comparing the set of types is enough.
    if (
        not isinstance(value, dict)
        or not _LIST.issuperset(map(type, value.values()))
        or not _STR.issuperset(map(type, chain.from_iterable(value.values())))
    ):
        raise BadRequest(f"The connect event field {name!r} must map names to lists of strings.")
    return value


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and _STR.issuperset(map(type, value))


_LIST, _STR = frozenset({list}), frozenset({str})


def _connect(context: EventContext, body: bytes) -> ConnectEvent:
    payload = _json_object(body, "connect")
    subprotocols = payload.get("subprotocols") or []
    if not _is_string_list(subprotocols):
        raise BadRequest("The connect event field 'subprotocols' must be a list of strings.")
    claims, query, headers = (
        payload.get("claims", _ABSENT),
        payload.get("query", _ABSENT),
        payload.get("headers", _ABSENT),
    )
    if not _all_string_lists(claims, query, headers):  # one check for all three; this path names the field
        for name in _STRING_LIST_FIELDS:
            _string_lists(payload.get(name), name)
    return ConnectEvent(context, _given(claims), _given(query), _given(headers), tuple(subprotocols))


_STRING_LIST_FIELDS = ("claims", "query", "headers")
_ABSENT: dict[str, list[str]] = {}  # stands for a missing field; never handed out


def _given(value: dict[str, list[str]]) -> dict[str, list[str]]:
    return {} if value is _ABSENT or value is None else value


def _all_string_lists(*maps: Any) -> bool:
    """Whether every map is a dict of lists of strings (parsed JSON holds exact types, no subclasses).

    None (null) is not a dict: the caller's slower path allows it.
    """
    for value in maps:
        if type(value) is not dict:
            return False
        for items in value.values():
            if type(items) is not list:
                return False
            for item in items:
                if type(item) is not str:
                    return False
    return True


@functools.lru_cache(maxsize=64)
def _data_type(content_type: str | None) -> DataType:
    """Data type from Content-Type; absent means binary, as the service treats it.

    Cached: the service sends a few Content-Type values over and over (refusals are not cached).
    """
    if not content_type or not content_type.strip():
        return "binary"
    media, *params = (part.strip() for part in content_type.split(";"))
    data_type = CONTENT_TYPES.get(media.lower())
    if data_type is None:
        raise UnsupportedMediaType(
            f"Unsupported Content-Type {media!r}: "
            "use text/plain, application/json or application/octet-stream."
        )
    for param in params:
        key, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if key.strip().lower() == "charset" and data_type != "binary" and charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"Unsupported charset {charset!r}: text must be UTF-8.")
    return data_type


# --- responses ------------------------------------------------------------------------------------


def choose_subprotocol(offered: Iterable[str]) -> str | None:
    """The first offered subprotocol this app speaks (the JSON PubSub ones), or None."""
    for protocol in offered:
        if protocol in JSON_SUBPROTOCOLS:
            return protocol
    return None


def _state_headers(states: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return () if states is None else ((STATE_HEADER, encode_state(states)),)


def connect_accepted(
    *,
    user_id: str | None = None,
    subprotocol: str | None = None,
    groups: Iterable[str] = (),
    roles: Iterable[str] = (),
    states: Mapping[str, Any] | None = None,
) -> EventResponse:
    """Accept a connect: 200 with the JSON fields given, or 204 when there is nothing to say.

    `states` (the whole merged map) is sent as ce-connectionState when given.
    """
    payload: dict[str, Any] = {} if user_id is None else {"userId": user_id}
    if groups and (groups := list(groups)):
        payload["groups"] = groups
    if roles and (roles := list(roles)):
        payload["roles"] = roles
    if subprotocol:  # an empty subprotocol is invalid: omit it
        payload["subprotocol"] = subprotocol
    if not payload:
        return EventResponse(204, headers=_state_headers(states))
    return EventResponse(
        200, json_dumps(payload).encode("utf-8"), REPLY_CONTENT_TYPES["json"], headers=_state_headers(states)
    )


def user_event_reply(
    data: bytes | str = b"", data_type: DataType = "binary", *, states: Mapping[str, Any] | None = None
) -> EventResponse:
    """Reply to the sender with a message of the given data type (sent as a server message)."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    return EventResponse(200, body, REPLY_CONTENT_TYPES[data_type], headers=_state_headers(states))


def no_content() -> EventResponse:
    """204: success, nothing sent to the client."""
    return EventResponse(204)


def acknowledged() -> EventResponse:
    """200 with an empty body, for non-blocking events."""
    return EventResponse(200)


def refused(status: int, message: str = "") -> EventResponse:
    """An error answer: the status and a plain-text explanation."""
    return EventResponse(status, message.encode("utf-8"), "text/plain; charset=utf-8" if message else None)
