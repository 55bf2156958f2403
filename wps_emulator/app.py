"""The aiohttp application: client endpoint, health, REST (from `rest.py`) and optional test hooks."""

from __future__ import annotations

import logging

from aiohttp import web

from . import rest
from .config import EmulatorConfig
from .endpoint import SERVICE_KEY, client_endpoint
from .entra import EntraVerifier
from .hosts import HostPolicy, host_check
from .hub import HubRegistry
from .service import Service
from .session import Session
from .upstream import Upstream

log = logging.getLogger(__name__)


async def health(request: web.Request) -> web.Response:
    """`HEAD /api/health` (and GET): 200 once the emulator serves."""
    return web.Response(status=200)


async def drop_connection(request: web.Request) -> web.Response:
    """Test hook: cut a client's TCP connection without a close frame, as a network failure would."""
    service = request.app[SERVICE_KEY]
    connection = service.registry.hub(request.match_info["hub"]).get(request.match_info["connection_id"])
    session = connection.channel if connection is not None else None
    if not isinstance(session, Session):
        return web.Response(status=404, text="no such connection\n")
    log.info("test hook: dropping the socket of %s", session.label)
    session.abort()
    return web.Response(status=204)


def create_app(config: EmulatorConfig, registry: HubRegistry | None = None) -> web.Application:
    """Build the emulator's web application for `config`."""
    registry = registry or HubRegistry()
    upstream = Upstream(
        access_key=config.access_key,
        origin=config.origin,
        timeout=config.upstream_timeout,
        retry_delays=config.retry_delays,
    )
    hosts = HostPolicy(config.endpoint, config.allowed_hosts)
    service = Service(config, registry, upstream, hosts)
    app = web.Application(client_max_size=16 * 1024 * 1024, middlewares=[host_check(hosts)])
    app[SERVICE_KEY] = service
    app.router.add_get("/api/health", health)  # GET also registers HEAD
    app.router.add_route("GET", "/client/hubs/{hub}", client_endpoint)
    app.router.add_route("GET", "/client/", client_endpoint)
    app.router.add_route("GET", "/client", client_endpoint)
    if config.test_hooks:
        app.router.add_route(
            "POST", "/_emulator/hubs/{hub}/connections/{connection_id}/drop", drop_connection
        )
    authority = config.entra_authority_url
    entra = EntraVerifier.for_tenant(config.entra_tenant, authority) if authority else None
    rest.setup(app, registry=registry, access_key=config.access_key, hosts=hosts, entra=entra)

    async def shutdown(app: web.Application) -> None:
        for hub in registry:
            await hub.close(list(hub.connections.values()), "the service is shutting down")
        await service.drain()
        await upstream.close()
        if entra is not None:
            await entra.close()

    app.on_shutdown.append(shutdown)
    return app
