"""`python -m wps_emulator` (or `wps-emulator`): run the local Web PubSub emulator."""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from .app import create_app
from .config import ConfigError, EmulatorConfig, load_config, program_name
from .entra import AUDIENCE as ENTRA_AUDIENCE
from .port_owner import port_owner
from .tls import server_context


def main(argv: Sequence[str] | None = None) -> int:
    """Parse settings, serve until interrupted; the connection string is printed once listening."""
    try:
        config = load_config(argv)
        ssl_context = server_context(config)
    except ConfigError as exc:
        print(f"{program_name()}: {exc}", file=sys.stderr)
        return 2
    # Other libraries (aiohttp) say only what goes wrong; every emulator module logs under `wps_emulator`.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    logging.getLogger("wps_emulator").setLevel(getattr(logging, config.log_level, logging.INFO))
    try:
        web.run_app(
            create_app(config),
            host=config.host,
            port=config.port,
            ssl_context=ssl_context,
            print=lambda _: announce(config),  # called once the port is bound
            access_log=None,
        )
    except OSError as exc:
        print(f"{program_name()}: {cannot_listen(config, exc)}", file=sys.stderr)
        return 1
    return 0


def announce(config: EmulatorConfig) -> None:
    """The connection string first (tools read the first line), then TLS, Entra and the event handlers."""
    print(config.connection_string, flush=True)
    if config.tls:
        print(f"TLS: https and wss with certificate {config.tls_certificate}", flush=True)
    if config.entra_authority_url:
        print(
            f"Entra: REST calls may carry tokens of tenant {config.entra_tenant} for "
            f"{ENTRA_AUDIENCE} (keys from {config.entra_authority_url})",
            flush=True,
        )
    for hub in config.hubs:
        for handler in hub.handlers:
            print(
                f"hub {hub.name}: {handler.url_template} user events {handler.user_events!r} "
                f"system events {','.join(handler.system_events) or '-'}",
                flush=True,
            )


def cannot_listen(config: EmulatorConfig, exc: OSError) -> str:
    """One line saying why the emulator cannot listen and what to do about it."""
    where = f"{config.host}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        owner = port_owner(config.port)
        held = f" by {owner}" if owner else ""
        return (
            f"port {config.port} is already in use{held}; stop that process, or pick another port with "
            f"--port <number> (or WPS_EMULATOR_PORT)"
        )
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on {where}; pick a port above 1023 with --port <number>"
    return f"cannot listen on {where}: {exc.strerror or exc}; check --host and --port"


if __name__ == "__main__":
    sys.exit(main())
