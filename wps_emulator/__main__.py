"""`python -m wps_emulator`: run the local Web PubSub emulator."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from .app import create_app
from .config import ConfigError, load_config


def main(argv: Sequence[str] | None = None) -> int:
    """Parse settings, print the connection string and serve until interrupted."""
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"wps_emulator: {exc}", file=sys.stderr)
        return 2
    # Other libraries (aiohttp) say only what goes wrong; every emulator module logs under `wps_emulator`.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    logging.getLogger("wps_emulator").setLevel(getattr(logging, config.log_level, logging.INFO))
    print(config.connection_string, flush=True)
    for hub in config.hubs:
        for handler in hub.handlers:
            print(
                f"hub {hub.name}: {handler.url_template} user events {handler.user_events!r} "
                f"system events {','.join(handler.system_events) or '-'}",
                flush=True,
            )
    web.run_app(create_app(config), host=config.host, port=config.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
