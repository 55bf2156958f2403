"""Which hosts the emulator answers for, so that only this machine's clients (and ones you name) reach it.

A WebSocket upgrade or REST call is served only when its `Host` (and its `Origin`, when a browser
sends one) names a loopback host (`localhost`, `127.0.0.1`, `[::1]`), the public endpoint's host, or
a host given in the `allowedHosts` setting, on any port. That stops a web page from another origin
from opening sockets to the emulator, and a DNS-rebinding page (whose requests carry its own host
name) from reaching the REST API. Tokens must name the public endpoint, or the same scheme and port
on one of those hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .tokens import Origin, origin_of

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_HOST = "*"


def is_loopback(host: str) -> bool:
    """True for `localhost`, `127.0.0.1` and `::1` (also written `[::1]`), in any letter case."""
    return host.strip("[]").lower() in LOOPBACK_HOSTS


def _host_name(authority: str) -> str | None:
    """`localhost:8080` -> `localhost`, `[::1]:8080` -> `::1`; None when it is not a host[:port]."""
    try:
        parts = urlsplit("//" + authority)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.path or parts.query or parts.username is not None:
        return None
    return parts.hostname


class HostPolicy:
    """The hosts a request may name in `Host` and `Origin`, and the endpoints tokens may name."""

    def __init__(self, endpoint: str, allowed_hosts: Iterable[str] = ()) -> None:
        self.endpoint = endpoint
        extra = [h.strip("[]").lower() for h in allowed_hosts]
        self._any = ANY_HOST in extra
        endpoint_host = urlsplit(endpoint).hostname or ""
        self._hosts = dict.fromkeys([*LOOPBACK_HOSTS, endpoint_host, *(h for h in extra if h != ANY_HOST)])

    def accepts(self, host: str | None) -> bool:
        return host is not None and (self._any or host.strip("[]").lower() in self._hosts)

    def refusal(self, host_header: str | None, origin_header: str | None) -> str | None:
        """Why a request with these headers is refused, or None when it may be served."""
        if host_header is None:
            return f"the request has no Host header; {self.accepted()}"
        if not self.accepts(_host_name(host_header)):
            return f"Host {host_header!r} is not a host this emulator answers for; {self.accepted()}"
        if origin_header is not None and not self.accepts(urlsplit(origin_header).hostname):
            return f"pages from origin {origin_header!r} may not use this emulator; {self.accepted()}"
        return None

    def accepted(self) -> str:
        names = ", ".join(f"[{h}]" if ":" in h else h for h in self._hosts)
        return (
            f"accepted hosts and page origins: {names} (any port, any scheme); add another with "
            "--allowed-hosts NAME (WPS_EMULATOR_ALLOWED_HOSTS, allowedHosts in the JSON file)"
        )

    def token_origins(self) -> set[Origin]:
        """What tokens may name: the public endpoint, or its scheme and port on an accepted host."""
        scheme, _, port = origin_of(self.endpoint)
        return {origin_of(self.endpoint)} | {(scheme, host, port) for host in self._hosts}


def host_check(policy: HostPolicy) -> Middleware:
    """An aiohttp middleware answering 403 (text saying why and what is accepted) to other hosts."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = policy.refusal(request.headers.get("Host"), request.headers.get("Origin"))
        if refusal is not None:
            log.info("%s %s refused 403: %s", request.method, request.path, refusal)
            return web.Response(status=403, text=refusal + "\n")
        return await handler(request)

    return check
