"""The client WebSocket endpoint: `/client/hubs/{hub}` and `/client/?hub=`.

Handshake order: hub name, token (or reconnection), the blocking `connect` event, subprotocol choice,
upgrade. Every refusal is an HTTP error before the upgrade, with a text body saying why.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import uuid
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from . import jsonprotocol as jp
from .connection import ClientConnection, ClientKind
from .hub import Connection
from .names import InvalidName, check_group_name, check_hub_name
from .service import SYSTEM_EVENT_CONTENT_TYPE, Service
from .tokens import ClientClaims, TokenError, verify_client_token
from .upstream import UpstreamError

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1024 * 1024
HEARTBEAT_SECONDS = 30.0  # a peer that does not answer a ping within half of this counts as lost
SERVICE_KEY: web.AppKey[Service] = web.AppKey("service", Service)


class Refusal(Exception):
    """The handshake is refused with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _refuse(request: web.Request, hub: str, exc: Refusal) -> web.Response:
    log.info("connection to hub %s refused %d: %s", hub or "?", exc.status, exc)
    return web.Response(status=exc.status, text=str(exc) + "\n")


async def client_endpoint(request: web.Request) -> web.StreamResponse:
    """Accept (or refuse) one client WebSocket."""
    service = request.app[SERVICE_KEY]
    hub = request.match_info.get("hub") or request.query.get("hub", "")
    try:
        if not hub:
            raise Refusal(400, "hub is missing: connect to /client/hubs/<hub> or /client/?hub=<hub>")
        try:
            check_hub_name(hub)
        except InvalidName as exc:
            raise Refusal(400, str(exc)) from None
        probe = web.WebSocketResponse(protocols=_offered_protocols(request))  # only checks the request
        if not probe.can_prepare(request).ok:
            raise Refusal(400, "this endpoint expects a WebSocket upgrade request")
        if "awps_connection_id" in request.query:
            return await _reconnect(request, service, hub)
        claims = _claims(request, service, hub)
        return await _connect(request, service, hub, claims)
    except Refusal as exc:
        return _refuse(request, hub, exc)


def _claims(request: web.Request, service: Service, hub: str) -> ClientClaims:
    token = request.query.get("access_token")
    if not token:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
    if not token:
        raise Refusal(401, "access token is missing: pass ?access_token=<jwt> or Authorization: Bearer <jwt>")
    endpoints = [f"{request.scheme}://{request.host}", service.config.endpoint]
    try:
        return verify_client_token(token, service.config.access_key, hub, endpoints)
    except TokenError as exc:
        raise Refusal(exc.status, str(exc)) from exc


def _socket(protocols: tuple[str, ...]) -> web.WebSocketResponse:
    """The server side of a client socket: 1 MiB frames, no compression, pings to find dead peers."""
    return web.WebSocketResponse(
        protocols=protocols,
        max_msg_size=MAX_FRAME_BYTES + 1,  # aiohttp refuses sizes >= its limit
        compress=False,  # frames are written pre-built and uncompressed (connection.ws_frame)
        heartbeat=HEARTBEAT_SECONDS,
    )


def _offered_protocols(request: web.Request) -> list[str]:
    header = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return [p.strip() for p in header.split(",") if p.strip()]


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


def _parse_connect_reply(body: bytes) -> dict[str, Any]:
    """The 200 body of a connect reply; empty or `null` means keep the token's defaults."""
    if not body.strip():
        return {}
    try:
        reply = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Refusal(
            500, f"the connect event handler answered 200 with a body that is not JSON: {exc}"
        ) from exc
    if reply is None:
        return {}
    if not isinstance(reply, dict):
        raise Refusal(500, "the connect event handler answered 200 with JSON that is not an object")
    for key in ("groups", "roles"):
        value = reply.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise Refusal(500, f"the connect event handler answered {key!r} that is not a list of strings")
    for group in reply.get("groups") or []:
        try:
            check_group_name(group)
        except InvalidName as exc:
            raise Refusal(500, f"the connect event handler answered an invalid group: {exc}") from None
    for key in ("userId", "subprotocol"):
        if reply.get(key) is not None and not isinstance(reply[key], str):
            raise Refusal(500, f"the connect event handler answered {key!r} that is not a string")
    return reply


async def _connect(
    request: web.Request, service: Service, hub_name: str, claims: ClientClaims
) -> web.StreamResponse:
    offered = _offered_protocols(request)
    info = Connection(
        connection_id=uuid.uuid4().hex,
        hub=hub_name,
        user_id=claims.user_id,
        sink=None,  # type: ignore[arg-type]  # set below, once the socket exists
        roles=set(claims.roles),
        groups=set(claims.groups),
    )
    subprotocol = next((p for p in offered if p in jp.SUPPORTED_PROTOCOLS), None)

    # The blocking connect event (ce-id 0); its answer may change the user, groups, roles and subprotocol.
    event = service.build_event(
        info,
        "sys",
        "connect",
        _connect_body(request, claims, offered),
        SYSTEM_EVENT_CONTENT_TYPE,
        state=None,
        event_id=lambda: 0,
    )
    connection_state: str | None = None
    if event is not None:
        try:
            response = await service.upstream.send(event)
        except UpstreamError as exc:
            raise Refusal(502, f"the connect event handler could not be reached: {exc}") from exc
        if not response.ok:
            # An error status goes to the client as is (401 rejects, etc.); anything else is our 500.
            status = response.status if 400 <= response.status < 600 else 500
            raise Refusal(status, f"the connect event handler refused the connection ({response.status})")
        connection_state = response.connection_state
        reply = _parse_connect_reply(response.body)
        if "userId" in reply:
            info.user_id = reply["userId"] or None
        if reply.get("groups"):
            info.groups = set(reply["groups"])
        if reply.get("roles") is not None:
            info.roles = set(reply["roles"])
        chosen = reply.get("subprotocol")
        if chosen:
            if chosen not in offered:
                raise Refusal(
                    500, f"the connect event handler chose subprotocol {chosen!r} the client did not offer"
                )
            subprotocol = chosen
    info.subprotocol = subprotocol
    kind = ClientKind.of(subprotocol)

    ws = _socket((subprotocol,) if subprotocol else ())
    await ws.prepare(request)
    conn = ClientConnection(
        kind=kind,
        ws=ws,
        transport=request.transport,
        finisher=service.finish,
        reconnection_token=secrets.token_urlsafe(32) if kind is ClientKind.RELIABLE else None,
    )
    conn.info = info
    conn.connection_state = connection_state
    conn.next_event_id()  # 0 was the connect event
    info.sink = conn
    if kind is not ClientKind.SIMPLE:
        await conn.send_text(jp.connected(info.connection_id, info.user_id, conn.reconnection_token))
    service.registry.hub(hub_name).add(info)
    service.on_connected(conn)
    await _serve(service, conn, ws)
    return ws


async def _reconnect(request: web.Request, service: Service, hub_name: str) -> web.StreamResponse:
    """A reliable client coming back with awps_connection_id + awps_reconnection_token."""
    connection_id = request.query.get("awps_connection_id", "")
    token = request.query.get("awps_reconnection_token", "")
    info = service.registry.hub(hub_name).get(connection_id)
    conn = info.sink if info is not None else None
    offered = _offered_protocols(request)
    valid = (
        isinstance(conn, ClientConnection)
        and conn.kind is ClientKind.RELIABLE
        and not conn.finished
        and conn.reconnection_token is not None
        and hmac.compare_digest(conn.reconnection_token, token)
        and conn.info.subprotocol in offered
    )
    ws = _socket(tuple(p for p in offered if p in jp.SUPPORTED_PROTOCOLS)[:1])
    await ws.prepare(request)
    if not valid:
        # Recovery failure is told with close code 1008: the client must start a new connection.
        log.info("reconnection of %s/%s refused: unknown, expired or wrong token", hub_name, connection_id)
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"the connection cannot be recovered")
        return ws
    assert isinstance(conn, ClientConnection)
    replayed = await conn.reattach(ws, request.transport)
    log.info("connection %s reconnected; replayed %d unacknowledged messages", conn.label, replayed)
    await _serve(service, conn, ws)
    return ws


async def _serve(service: Service, conn: ClientConnection, ws: web.WebSocketResponse) -> None:
    """Read frames until the socket ends, then finish the connection (or park a reliable one)."""
    clean_close = False
    try:
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.TEXT:
                if conn.kind is ClientKind.SIMPLE:
                    await service.handle_simple_frame(conn, msg.data.encode("utf-8"), binary=False)
                else:
                    await service.handle_json_frame(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                if conn.kind is ClientKind.SIMPLE:
                    await service.handle_simple_frame(conn, msg.data, binary=True)
                else:
                    await conn.close_with(
                        WSCloseCode.UNSUPPORTED_DATA,
                        "binary frames are not supported by the JSON subprotocols",
                    )
            elif msg.type == WSMsgType.CLOSE:
                clean_close = True
                break
            elif msg.type == WSMsgType.ERROR:
                log.info("connection %s socket error: %s", conn.label, ws.exception())
                # Too-large frames end here too (aiohttp closes with 1009); that is final, not a drop.
                clean_close = ws.close_code is not None and ws.close_code != WSCloseCode.ABNORMAL_CLOSURE
                break
            else:  # CLOSING / CLOSED
                break
            if conn.finished:
                break
    finally:
        if conn.finished or conn.ws is not ws:
            pass  # closed by the service, or already taken over by a reconnection
        elif conn.kind is ClientKind.RELIABLE and not clean_close and conn.closing_reason is None:
            log.info("connection %s lost its socket; waiting up to 30 s for it to reconnect", conn.label)
            conn.detach(
                lambda: service.spawn(conn.finish("the connection was lost and not recovered in time"))
            )
        else:
            code = ws.close_code
            await conn.finish(
                conn.closing_reason
                or ("" if code in (None, WSCloseCode.OK, WSCloseCode.GOING_AWAY) else f"close code {code}")
            )
