"""The data-plane REST API of the emulated service, as `azure-messaging-webpubsubservice` 1.3 calls it.

`setup(app, registry=..., access_key=...)` registers every operation under `/api/hubs/{hub}/...`.
Each call is authenticated (bearer JWT, HS256 keyed by the access-key string, `aud` = the request URL
with the query ignored, `exp` checked; or, when a tenant is configured, an RS256 Entra token checked
by `entra.py`), validated (api-version, hub and group names, query values,
bodies) and logged on one line. Client mistakes get a 4xx with a JSON body
`{"code", "message", "target"}` that says what was wrong; success codes are exactly the ones the SDK
accepts (202 sends, 200 adds/grants/token/list, 204 removes/closes, 200/404 for HEAD checks).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from . import jsontext, names
from .entra import EntraVerifier, KeysUnavailable, is_entra_token
from .hosts import HostPolicy
from .hub import Connection, Hub, HubRegistry, Permission
from .messages import SUPPORTED_CONTENT_TYPES, ServerMessage, data_type_of
from .odata import FilterError, Predicate, compile_filter
from .tokens import Origin, TokenError, verify_rest_token

log = logging.getLogger(__name__)
# What an operation did, for its log line; each request runs in its own task, hence its own context.
_detail: ContextVar[str | None] = ContextVar("wps_emulator_rest_detail", default=None)
_caller: ContextVar[str | None] = ContextVar("wps_emulator_rest_caller", default=None)  # Entra callers

LATEST_API_VERSION = "2024-12-01"
MAX_PAGE_SIZE = 200
DEFAULT_TOKEN_MINUTES = 60

_API_VERSION = re.compile(r"(\d{4}-\d{2}-\d{2})(-preview)?")
_PERMISSIONS: tuple[Permission, ...] = ("sendToGroup", "joinLeaveGroup")
_CLIENT_PATHS = {"default": "/client/hubs/", "mqtt": "/clients/mqtt/hubs/"}


class RestError(Exception):
    """A refused REST call: HTTP status plus the JSON error body the client sees."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target

    def response(self) -> web.Response:
        # The service's ErrorDetail body, with its code repeated in x-ms-error-code.
        body = {"code": self.code, "message": self.message, "target": self.target}
        headers = {"x-ms-error-code": self.code}
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return web.json_response(body, status=self.status, headers=headers)


def _bad_request(message: str, target: str | None = None) -> RestError:
    return RestError(400, "BadRequest", message, target)


Operation = Callable[[web.Request, Hub], Awaitable[web.StreamResponse]]


def setup(
    app: web.Application,
    *,
    registry: HubRegistry,
    access_key: str,
    hosts: HostPolicy,
    entra: EntraVerifier | None = None,
) -> None:
    """Register every REST operation on `app`, sharing hub state with the WebSocket side.

    `hosts` says which endpoints bearer tokens may name (the public endpoint and its local forms);
    `entra`, when given, also lets in that tenant's Entra tokens.
    """
    RestApi(registry, access_key, hosts, entra).register(app)


# --- authentication --------------------------------------------------------------------------

_ENTRA_OFF = (
    "this is an Entra token (RS256), and this emulator accepts only tokens signed with its access key; "
    "start it with --entra-tenant <tenant id> (WPS_EMULATOR_ENTRA_TENANT) to accept that tenant's tokens"
)


async def authenticate(
    request: web.Request, access_key: str, origins: Collection[Origin], entra: EntraVerifier | None = None
) -> str | None:
    """Check the bearer JWT of a REST call: who called (an Entra caller's description; None for the key).

    Raises a 401 `RestError` saying what is wrong, or a 503 when the Entra keys cannot be fetched.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise RestError(401, "Unauthorized", "missing 'Authorization: Bearer <token>' header")
    try:
        if not is_entra_token(token):
            verify_rest_token(token, access_key, request.raw_path, origins)
            return None
        if entra is None:
            raise TokenError(_ENTRA_OFF)
        return (await entra.verify(token)).describe()
    except TokenError as error:
        raise RestError(error.status, "Unauthorized", str(error)) from None
    except KeysUnavailable as error:
        raise RestError(503, "ServiceUnavailable", f"cannot check the Entra token: {error}") from None


# --- request parsing -------------------------------------------------------------------------


def check_api_version(request: web.Request) -> None:
    """Accept a missing api-version (= latest) or any dated version up to the latest one."""
    version = request.query.get("api-version")
    if version is None:
        return
    match = _API_VERSION.fullmatch(version)
    if match is None or match.group(1) > LATEST_API_VERSION:
        raise _bad_request(
            f"api-version '{version}' is not supported; this emulator implements versions up to "
            f"{LATEST_API_VERSION}",
            "api-version",
        )


def check_hub_name(hub: str) -> None:
    try:
        names.check_hub_name(hub)
    except names.InvalidName as error:
        raise _bad_request(str(error), "hub") from None


def check_group_name(group: str, target: str = "group") -> None:
    try:
        names.check_group_name(group)
    except names.InvalidName as error:
        raise _bad_request(str(error), target) from None


def _path_param(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if name == "group":
        check_group_name(value)
    elif not value:
        raise _bad_request(f"{name} must not be empty", name)
    return value


def _int_query(request: web.Request, name: str, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer, not {raw!r}", name) from None
    if not low <= value <= high:
        raise _bad_request(f"{name} must be between {low} and {high}, not {value}", name)
    return value


def _filter_query(request: web.Request) -> Predicate | None:
    text = request.query.get("filter")
    return None if text is None else _compile(text)


def _compile(text: str) -> Predicate:
    try:
        return compile_filter(text)
    except FilterError as error:
        raise _bad_request(f"invalid filter: {error}", "filter") from None


async def _read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise RestError(413, "PayloadTooLarge", f"the request body is too large: {error.text}") from None


async def read_message(request: web.Request) -> ServerMessage:
    """The body of a send as a server message; the content type picks json, text or binary."""
    if "Content-Type" not in request.headers:
        raise _bad_request(f"missing Content-Type: use {SUPPORTED_CONTENT_TYPES}", "Content-Type")
    content_type = request.content_type
    data_type = data_type_of(content_type)
    if data_type is None:
        raise _bad_request(
            f"unsupported Content-Type {content_type!r}: use {SUPPORTED_CONTENT_TYPES}", "Content-Type"
        )
    charset = request.charset
    if data_type != "binary" and charset is not None and charset.lower().replace("-", "") != "utf8":
        raise _bad_request(f"unsupported charset {charset!r}: text and JSON must be UTF-8", "Content-Type")
    body = await _read_body(request)
    if data_type != "binary":
        try:
            text = body.decode("utf-8")
            if data_type == "json":
                jsontext.check(text)  # delivered as sent: checked, never decoded and re-encoded
        except (UnicodeDecodeError, jsontext.JsonTextError) as error:
            what = "UTF-8 text" if isinstance(error, UnicodeDecodeError) else "JSON"
            raise _bad_request(f"the body is not valid {what}: {error}", "body") from None
    return ServerMessage(data=body, data_type=data_type, source="server")


# --- list paging -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PagePosition:
    """Where a connection listing continues: how many were returned, and the last connection id."""

    returned: int = 0
    after: str | None = None

    def encode(self) -> str:
        raw = json.dumps([self.returned, self.after], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str | None) -> PagePosition:
        if token is None:
            return cls()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            returned, after = json.loads(raw)
            if isinstance(returned, int) and returned >= 0 and isinstance(after, str):
                return cls(returned, after)
        except (binascii.Error, ValueError, TypeError):
            pass
        raise _bad_request("continuationToken is not one this emulator issued", "continuationToken")


# --- the operations --------------------------------------------------------------------------


class RestApi:
    """The REST operations over one `HubRegistry`, authenticated with one access key (and Entra tokens)."""

    def __init__(
        self, registry: HubRegistry, access_key: str, hosts: HostPolicy, entra: EntraVerifier | None = None
    ) -> None:
        self.registry = registry
        self.access_key = access_key
        self.token_origins = hosts.token_origins()
        self.entra = entra

    def register(self, app: web.Application) -> None:
        hub = "/api/hubs/{hub}"
        routes: list[tuple[str, str, Operation]] = [
            ("POST", f"{hub}/:send", self.send_to_all),
            ("POST", f"{hub}/groups/{{group}}/:send", self.send_to_group),
            ("POST", f"{hub}/users/{{userId}}/:send", self.send_to_user),
            ("POST", f"{hub}/connections/{{connectionId}}/:send", self.send_to_connection),
            ("PUT", f"{hub}/groups/{{group}}/connections/{{connectionId}}", self.add_connection_to_group),
            (
                "DELETE",
                f"{hub}/groups/{{group}}/connections/{{connectionId}}",
                self.remove_connection_from_group,
            ),
            ("DELETE", f"{hub}/connections/{{connectionId}}/groups", self.remove_connection_from_all_groups),
            ("PUT", f"{hub}/users/{{userId}}/groups/{{group}}", self.add_user_to_group),
            ("DELETE", f"{hub}/users/{{userId}}/groups/{{group}}", self.remove_user_from_group),
            ("DELETE", f"{hub}/users/{{userId}}/groups", self.remove_user_from_all_groups),
            ("POST", f"{hub}/:addToGroups", self.add_filtered_to_groups),
            ("POST", f"{hub}/:removeFromGroups", self.remove_filtered_from_groups),
            ("DELETE", f"{hub}/connections/{{connectionId}}", self.close_connection),
            ("POST", f"{hub}/:closeConnections", self.close_all_connections),
            ("POST", f"{hub}/groups/{{group}}/:closeConnections", self.close_group_connections),
            ("POST", f"{hub}/users/{{userId}}/:closeConnections", self.close_user_connections),
            ("HEAD", f"{hub}/connections/{{connectionId}}", self.connection_exists),
            ("HEAD", f"{hub}/groups/{{group}}", self.group_exists),
            ("HEAD", f"{hub}/users/{{userId}}", self.user_exists),
            ("GET", f"{hub}/groups/{{group}}/connections", self.list_connections),
            ("PUT", f"{hub}/permissions/{{permission}}/connections/{{connectionId}}", self.grant_permission),
            (
                "DELETE",
                f"{hub}/permissions/{{permission}}/connections/{{connectionId}}",
                self.revoke_permission,
            ),
            ("HEAD", f"{hub}/permissions/{{permission}}/connections/{{connectionId}}", self.has_permission),
            ("POST", f"{hub}/:generateToken", self.generate_token),
        ]
        for method, path, operation in routes:
            app.router.add_route(method, path, self._endpoint(operation))
        # Anything else under /api/hubs gets a JSON 404 naming the request instead of a bare one.
        app.router.add_route("*", "/api/hubs/{tail:.*}", self._unknown_operation)

    def _endpoint(self, operation: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            _detail.set(None)
            _caller.set(None)
            response = await self._respond(request, operation)
            elapsed = (time.perf_counter() - started) * 1000
            detail, caller = _detail.get(), _caller.get()
            log.info(
                "REST %s %s -> %d%s (%.1f ms)%s",
                request.method,
                request.path,
                response.status,
                f" {detail}" if detail else "",
                elapsed,
                f" by {caller}" if caller else "",
            )
            return response

        return endpoint

    async def _respond(self, request: web.Request, operation: Operation) -> web.StreamResponse:
        try:
            _caller.set(await authenticate(request, self.access_key, self.token_origins, self.entra))
            check_api_version(request)
            name = request.match_info["hub"]
            check_hub_name(name)
            return await operation(request, self.registry.hub(name))
        except RestError as error:
            _detail.set(error.message)
            return error.response()
        except Exception:
            log.exception("REST %s %s failed", request.method, request.path)
            return RestError(500, "InternalServerError", "the emulator failed; see its log").response()

    async def _unknown_operation(self, request: web.Request) -> web.StreamResponse:
        message = f"no REST operation {request.method} {request.path} in this emulator"
        log.info("REST %s %s -> 404 unknown operation", request.method, request.path)
        return RestError(404, "NotFound", message).response()

    # --- sends ---------------------------------------------------------------------------------

    async def _send(
        self,
        request: web.Request,
        hub: Hub,
        candidates: Iterable[Connection] | None,
        group: str | None = None,
    ) -> web.StreamResponse:
        where = _filter_query(request)
        _int_query(request, "messageTtlSeconds", 0, 300)  # validated; delivery is immediate here
        message = await read_message(request)
        if group is not None:
            # JSON clients see a send to a group as a group message (without fromUserId), as in Azure.
            message = dataclasses.replace(message, source="group", group=group)
        targets = hub.select(candidates, excluded=request.query.getall("excluded", []), where=where)
        count = await hub.deliver(targets, message)
        _detail.set(f"{message.data_type}, {len(message.data)} bytes to {count} connection(s)")
        return web.Response(status=202)

    async def send_to_all(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        return await self._send(request, hub, None)

    async def send_to_group(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        group = _path_param(request, "group")
        return await self._send(request, hub, hub.in_group(group), group)

    async def send_to_user(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        return await self._send(request, hub, hub.of_user(_path_param(request, "userId")))

    async def send_to_connection(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        conn = hub.get(_path_param(request, "connectionId"))
        return await self._send(request, hub, [conn] if conn is not None else [])

    # --- group membership ----------------------------------------------------------------------

    async def add_connection_to_group(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        group = _path_param(request, "group")
        connection_id = _path_param(request, "connectionId")
        if not hub.join(connection_id, group):
            raise _connection_not_found(hub, connection_id)
        return web.Response(status=200)

    async def remove_connection_from_group(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        hub.leave(_path_param(request, "connectionId"), _path_param(request, "group"))
        return web.Response(status=204)

    async def remove_connection_from_all_groups(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        hub.leave_all(_path_param(request, "connectionId"))
        return web.Response(status=204)

    async def add_user_to_group(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        hub.add_user_to_group(_path_param(request, "userId"), _path_param(request, "group"))
        return web.Response(status=200)

    async def remove_user_from_group(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        hub.remove_user_from_group(_path_param(request, "userId"), _path_param(request, "group"))
        return web.Response(status=204)

    async def remove_user_from_all_groups(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        hub.remove_user_from_all_groups(_path_param(request, "userId"))
        return web.Response(status=204)

    async def _groups_request(self, request: web.Request, hub: Hub) -> tuple[list[str], list[Connection]]:
        """The `{"groups": [...], "filter": "..."}` body of :addToGroups / :removeFromGroups."""
        if data_type_of(request.content_type) != "json":
            raise _bad_request(
                'the body must be application/json: {"groups": [...], "filter": "..."}', "Content-Type"
            )
        try:
            body = json.loads(await _read_body(request))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise _bad_request(f"the body is not valid JSON: {error}", "body") from None
        if not isinstance(body, dict):
            raise _bad_request("the body must be a JSON object with 'groups' and 'filter'", "body")
        groups = body.get("groups")
        if not isinstance(groups, list) or not groups or not all(isinstance(g, str) for g in groups):
            raise _bad_request("'groups' must be a non-empty list of group names", "groups")
        for group in groups:
            check_group_name(group, "groups")
        text = body.get("filter")
        if text is not None and not isinstance(text, str):
            raise _bad_request("'filter' must be a string", "filter")
        where = None if text is None else _compile(text)
        return groups, hub.select(where=where)

    async def add_filtered_to_groups(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        groups, targets = await self._groups_request(request, hub)
        for conn in targets:
            for group in groups:
                hub.join(conn.connection_id, group)
        _detail.set(f"{len(targets)} connection(s) to {len(groups)} group(s)")
        return web.Response(status=200)

    async def remove_filtered_from_groups(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        groups, targets = await self._groups_request(request, hub)
        for conn in targets:
            for group in groups:
                hub.leave(conn.connection_id, group)
        _detail.set(f"{len(targets)} connection(s) from {len(groups)} group(s)")
        return web.Response(status=200)

    # --- closing -------------------------------------------------------------------------------

    async def _close(
        self, request: web.Request, hub: Hub, candidates: Iterable[Connection] | None
    ) -> web.StreamResponse:
        targets = hub.select(candidates, excluded=request.query.getall("excluded", []))
        count = await hub.close(targets, request.query.get("reason"))
        _detail.set(f"{count} connection(s) closed")
        return web.Response(status=204)

    async def close_connection(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        conn = hub.get(_path_param(request, "connectionId"))
        return await self._close(request, hub, [conn] if conn is not None else [])

    async def close_all_connections(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        return await self._close(request, hub, None)

    async def close_group_connections(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        return await self._close(request, hub, hub.in_group(_path_param(request, "group")))

    async def close_user_connections(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        return await self._close(request, hub, hub.of_user(_path_param(request, "userId")))

    # --- existence -----------------------------------------------------------------------------

    async def connection_exists(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        return _found(hub.get(_path_param(request, "connectionId")) is not None)

    async def group_exists(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        return _found(hub.group_exists(_path_param(request, "group")))

    async def user_exists(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        return _found(hub.user_exists(_path_param(request, "userId")))

    async def list_connections(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        group = _path_param(request, "group")
        page_size = _int_query(request, "maxpagesize", 1, MAX_PAGE_SIZE) or MAX_PAGE_SIZE
        top = _int_query(request, "top", 1, 2**31 - 1)
        position = PagePosition.decode(request.query.get("continuationToken"))
        # Ordered by id so a continuation token (the last id returned) stays valid as members change.
        members = sorted(hub.in_group(group), key=lambda c: c.connection_id)
        rest = [c for c in members if position.after is None or c.connection_id > position.after]
        limit = page_size if top is None else max(0, min(page_size, top - position.returned))
        page = rest[:limit]
        body: dict[str, Any] = {"value": [_member(c) for c in page]}
        returned = position.returned + len(page)
        if page and len(rest) > len(page) and (top is None or returned < top):
            token = PagePosition(returned, page[-1].connection_id).encode()
            query = [(k, v) for k, v in request.query.items() if k != "continuationToken"]
            body["nextLink"] = str(request.rel_url.with_query([*query, ("continuationToken", token)]))
        _detail.set(f"{len(page)} of {len(members)} connection(s)")
        return web.json_response(body, status=200)

    # --- permissions ---------------------------------------------------------------------------

    def _permission_request(self, request: web.Request) -> tuple[Permission, str, str | None]:
        permission = request.match_info["permission"]
        if permission not in _PERMISSIONS:
            raise _bad_request(
                f"unknown permission {permission!r}: use sendToGroup or joinLeaveGroup", "permission"
            )
        target = request.query.get("targetName")
        if target is not None:
            check_group_name(target, "targetName")
        return permission, _path_param(request, "connectionId"), target

    async def grant_permission(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        permission, connection_id, target = self._permission_request(request)
        if not hub.grant(connection_id, permission, target):
            raise _connection_not_found(hub, connection_id)
        return web.Response(status=200)

    async def revoke_permission(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        permission, connection_id, target = self._permission_request(request)
        hub.revoke(connection_id, permission, target)
        return web.Response(status=204)

    async def has_permission(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        permission, connection_id, target = self._permission_request(request)
        conn = hub.get(connection_id)
        return _found(conn is not None and conn.has_permission(permission, target))

    # --- client tokens -------------------------------------------------------------------------

    async def generate_token(self, request: web.Request, hub: Hub) -> web.StreamResponse:
        query = request.query
        client_type = query.get("clientType", "Default")
        path = _CLIENT_PATHS.get(client_type.casefold())
        if path is None:
            raise _bad_request(f"unsupported clientType {client_type!r}: use Default or MQTT", "clientType")
        minutes = _int_query(request, "minutesToExpire", 1, 2**31 - 1) or DEFAULT_TOKEN_MINUTES
        groups = query.getall("group", [])
        for group in groups:
            check_group_name(group, "group")
        scheme = request.scheme.lower()
        now = int(time.time())
        claims: dict[str, Any] = {
            # The hub as the caller spelled it, like the SDK's own offline tokens.
            "aud": f"{scheme}://{request.host.lower()}{path}{request.match_info['hub']}",
            "iat": now,
            "exp": now + minutes * 60,
        }
        if user_id := query.get("userId"):
            claims["sub"] = user_id
        if roles := query.getall("role", []):
            claims["role"] = roles
        if groups:
            claims["webpubsub.group"] = groups
        token = jwt.encode(claims, self.access_key, algorithm="HS256")
        _detail.set(f"token for user {user_id!r}" if user_id else "anonymous token")
        return web.json_response({"token": token}, status=200)


def _found(exists: bool) -> web.Response:
    return web.Response(status=200 if exists else 404)


def _member(conn: Connection) -> dict[str, str]:
    member = {"connectionId": conn.connection_id}
    if conn.user_id is not None:
        member["userId"] = conn.user_id
    return member


def _connection_not_found(hub: Hub, connection_id: str) -> RestError:
    return RestError(
        404, "NotFound", f"connection {connection_id!r} is not connected to hub {hub.name!r}", "connectionId"
    )
