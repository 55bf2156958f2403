"""The client WebSocket endpoint: `/client/hubs/{hub}` and `/client/?hub=`.

Handshake order: hub name, token (or reconnection), the blocking `connect` event, subprotocol choice,
upgrade. Every refusal is an HTTP error before the upgrade, with a text body saying why.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import uuid
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from . import jsonprotocol as jp
from .names import InvalidName, check_group_name, check_hub_name
from .service import SYSTEM_EVENT_CONTENT_TYPE, Service
from .session import Admission, ClientKind, Session
from .tokens import ClientClaims, TokenError, verify_client_token
from .upstream import UpstreamError, UpstreamResponse

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1024 * 1024
HEARTBEAT_SECONDS = 30.0  # a peer that does not answer a ping within half of this counts as lost
SERVICE_KEY: web.AppKey[Service] = web.AppKey("service", Service)
_ORDINARY_CLOSES = (None, WSCloseCode.OK, WSCloseCode.GOING_AWAY)  # no reason worth reporting


class Refusal(Exception):
    """The handshake is refused with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def client_endpoint(request: web.Request) -> web.StreamResponse:
    """Accept (or refuse) one client WebSocket."""
    service = request.app[SERVICE_KEY]
    hub = request.match_info.get("hub") or request.query.get("hub", "")
    try:
        _check_handshake(request, hub)
        if "awps_connection_id" in request.query:
            return await _reconnect(request, service, hub)
        admission = await _admit(request, service, hub)
        return await _open(request, service, admission)
    except Refusal as exc:
        log.info("connection to hub %s refused %d: %s", hub or "?", exc.status, exc)
        return web.Response(status=exc.status, text=str(exc) + "\n")


def _check_handshake(request: web.Request, hub: str) -> None:
    if not hub:
        raise Refusal(400, "hub is missing: connect to /client/hubs/<hub> or /client/?hub=<hub>")
    try:
        check_hub_name(hub)
    except InvalidName as exc:
        raise Refusal(400, str(exc)) from None
    probe = web.WebSocketResponse(protocols=_offered_protocols(request))  # only checks the request
    if not probe.can_prepare(request).ok:
        raise Refusal(400, "this endpoint expects a WebSocket upgrade request")


def _offered_protocols(request: web.Request) -> list[str]:
    header = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return [p.strip() for p in header.split(",") if p.strip()]


def _first_supported(offered: list[str]) -> str | None:
    return next((p for p in offered if p in jp.SUPPORTED_PROTOCOLS), None)


def _socket(subprotocol: str | None) -> web.WebSocketResponse:
    """The server side of a client socket: 1 MiB frames, no compression, pings to find dead peers."""
    return web.WebSocketResponse(
        protocols=(subprotocol,) if subprotocol else (),
        max_msg_size=MAX_FRAME_BYTES + 1,  # aiohttp refuses sizes >= its limit
        compress=False,  # frames are written pre-built and uncompressed (session.ws_frame)
        heartbeat=HEARTBEAT_SECONDS,
    )


# --- a new connection: token, connect event, upgrade ------------------------------------------------


def _claims(request: web.Request, service: Service, hub: str) -> ClientClaims:
    token = request.query.get("access_token")
    if not token:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
    if not token:
        raise Refusal(401, "access token is missing: pass ?access_token=<jwt> or Authorization: Bearer <jwt>")
    try:
        return verify_client_token(token, service.config.access_key, hub, service.hosts.token_origins())
    except TokenError as exc:
        raise Refusal(exc.status, str(exc)) from exc


async def _admit(request: web.Request, service: Service, hub: str) -> Admission:
    """Who connects, with which groups, roles and subprotocol: the token, then the connect reply."""
    claims = _claims(request, service, hub)
    offered = _offered_protocols(request)
    admission = Admission(
        connection_id=uuid.uuid4().hex,
        hub=hub,
        user_id=claims.user_id,
        roles=frozenset(claims.roles),
        groups=frozenset(claims.groups),
    )
    body = _connect_body(request, claims, offered)
    event = service.upstream_event(admission, "sys", "connect", body, SYSTEM_EVENT_CONTENT_TYPE)
    if event is None:
        return dataclasses.replace(admission, subprotocol=_first_supported(offered))
    try:
        response = await service.upstream.send(event)
    except UpstreamError as exc:
        raise Refusal(502, f"the connect event handler could not be reached: {exc}") from exc
    return _apply_connect_reply(admission, response, offered)


def _connect_body(request: web.Request, claims: ClientClaims, offered: list[str]) -> bytes:
    query: dict[str, list[str]] = {}
    for key, value in request.query.items():
        if key != "access_token":
            query.setdefault(key, []).append(value)
    headers: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        if key.lower() != "authorization":
            headers.setdefault(key, []).append(value)
    body = {
        "claims": claims.as_connect_claims(),
        "query": query,
        "headers": headers,
        "subprotocols": offered,
        "clientCertificates": [],
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _apply_connect_reply(admission: Admission, response: UpstreamResponse, offered: list[str]) -> Admission:
    """The admission as the connect reply changes it: user, groups, roles, subprotocol, state."""
    if not response.ok:
        # An error status goes to the client as is (401 rejects, etc.); anything else is our 500.
        status = response.status if 400 <= response.status < 600 else 500
        raise Refusal(status, f"the connect event handler refused the connection ({response.status})")
    reply = _connect_reply(response.body)
    chosen = reply.get("subprotocol")
    if chosen and chosen not in offered:
        raise Refusal(500, f"the connect event handler chose subprotocol {chosen!r} the client did not offer")
    changes: dict[str, Any] = {
        "subprotocol": chosen or _first_supported(offered),
        "connection_state": response.connection_state,
    }
    if "userId" in reply:
        changes["user_id"] = reply["userId"] or None
    if reply.get("groups"):
        changes["groups"] = frozenset(reply["groups"])
    if reply.get("roles") is not None:
        changes["roles"] = frozenset(reply["roles"])
    return dataclasses.replace(admission, **changes)


def _connect_reply(body: bytes) -> dict[str, Any]:
    """The 200 body of a connect reply, checked; empty or `null` means keep the token's values."""
    if not body.strip():
        return {}
    try:
        reply = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise Refusal(
            500, f"the connect event handler answered 200 with a body that is not JSON: {exc}"
        ) from exc
    if reply is None:
        return {}
    if not isinstance(reply, dict):
        raise Refusal(500, "the connect event handler answered 200 with JSON that is not an object")
    _check_connect_reply(reply)
    return reply


def _check_connect_reply(reply: dict[str, Any]) -> None:
    for key in ("groups", "roles"):
        value = reply.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise Refusal(500, f"the connect event handler answered {key!r} that is not a list of strings")
    for key in ("userId", "subprotocol"):
        if reply.get(key) is not None and not isinstance(reply[key], str):
            raise Refusal(500, f"the connect event handler answered {key!r} that is not a string")
    try:
        for group in reply.get("groups") or []:
            check_group_name(group)
    except InvalidName as exc:
        raise Refusal(500, f"the connect event handler answered an invalid group: {exc}") from None


async def _open(request: web.Request, service: Service, admission: Admission) -> web.WebSocketResponse:
    """Upgrade, register the connection in its hub, announce it, then serve it until it ends."""
    ws = _socket(admission.subprotocol)
    await ws.prepare(request)
    session = Session(admission, ws=ws, transport=request.transport, finisher=service.finish)
    if session.kind is not ClientKind.SIMPLE:
        session.write_text(jp.connected(session.connection_id, session.user_id, session.reconnection_token))
    service.registry.hub(admission.hub).add(session.connection)
    service.on_connected(session)
    await _serve(service, session, ws)
    return ws


# --- a reliable client coming back --------------------------------------------------------------------


async def _reconnect(request: web.Request, service: Service, hub: str) -> web.WebSocketResponse:
    """A reliable client coming back with awps_connection_id + awps_reconnection_token."""
    offered = _offered_protocols(request)
    session = _recoverable_session(request, service, hub, offered)
    ws = _socket(_first_supported(offered))
    await ws.prepare(request)
    if session is None:
        # Recovery failure is told with close code 1008: the client must start a new connection.
        log.info(
            "reconnection of %s/%s refused: unknown, expired or wrong token",
            hub,
            request.query.get("awps_connection_id", ""),
        )
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"the connection cannot be recovered")
        return ws
    replayed = await session.reattach(ws, request.transport)
    log.info("connection %s reconnected; replayed %d unacknowledged messages", session.label, replayed)
    await _serve(service, session, ws)
    return ws


def _recoverable_session(
    request: web.Request, service: Service, hub: str, offered: list[str]
) -> Session | None:
    """The waiting reliable session the reconnection names, if its token and protocol match."""
    connection = service.registry.hub(hub).get(request.query.get("awps_connection_id", ""))
    session = connection.channel if connection is not None else None
    if not isinstance(session, Session) or session.kind is not ClientKind.RELIABLE or session.finished:
        return None
    token = request.query.get("awps_reconnection_token", "")
    if session.reconnection_token is None or not hmac.compare_digest(session.reconnection_token, token):
        return None
    return session if session.subprotocol in offered else None


# --- serving an open socket ------------------------------------------------------------------------


async def _serve(service: Service, session: Session, ws: web.WebSocketResponse) -> None:
    """Read frames until the socket ends, then finish the connection (or park a reliable one)."""
    clean_close = False
    try:
        clean_close = await _read_frames(service, session, ws)
    finally:
        await _socket_ended(service, session, ws, clean_close)


async def _read_frames(service: Service, session: Session, ws: web.WebSocketResponse) -> bool:
    """Hand each frame to the service until the socket ends; True when it ended with a close."""
    while not session.finished:
        msg = await ws.receive()
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            await _dispatch(service, session, msg)
        elif msg.type == WSMsgType.CLOSE:
            return True
        elif msg.type == WSMsgType.ERROR:
            log.info("connection %s socket error: %s", session.label, ws.exception())
            # Too-large frames end here too (aiohttp closes with 1009); that is final, not a drop.
            return ws.close_code is not None and ws.close_code != WSCloseCode.ABNORMAL_CLOSURE
        else:  # CLOSING / CLOSED
            return False
    return False


async def _dispatch(service: Service, session: Session, msg: WSMessage) -> None:
    binary = msg.type == WSMsgType.BINARY
    if session.kind is ClientKind.SIMPLE:
        await service.handle_simple_frame(session, msg.data if binary else msg.data.encode("utf-8"), binary)
    elif binary:
        await session.close_with(
            WSCloseCode.UNSUPPORTED_DATA, "binary frames are not supported by the JSON subprotocols"
        )
    else:
        await service.handle_json_frame(session, msg.data)


async def _socket_ended(
    service: Service, session: Session, ws: web.WebSocketResponse, clean_close: bool
) -> None:
    if session.finished or session.ws is not ws:
        return  # closed by the service, or already taken over by a reconnection
    if session.kind is ClientKind.RELIABLE and not clean_close and session.closing_reason is None:
        log.info("connection %s lost its socket; waiting up to 30 s for it to reconnect", session.label)
        session.detach(
            lambda: service.spawn(session.finish("the connection was lost and not recovered in time"))
        )
        return
    code = ws.close_code
    await session.finish(session.closing_reason or ("" if code in _ORDINARY_CLOSES else f"close code {code}"))
