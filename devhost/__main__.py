"""`python -m devhost`: serve function_app.py's HTTP functions like `func start`, without Core Tools."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from devhost.indexing import (
    FunctionIndex,
    IndexingError,
    find_function_register,
    import_function_app,
    index_functions,
)
from devhost.local_settings import (
    SettingsFileError,
    apply_to_environment,
    read_local_settings,
    read_route_prefix,
)
from devhost.server import FunctionHost

DEFAULT_PORT = 7071


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Serve the HTTP functions of a Python v2 function_app.py the way `func start` does.",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("DEVHOST_HOST", "127.0.0.1"),
        help="interface to listen on (env DEVHOST_HOST; default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (env DEVHOST_PORT or FUNCTIONS_HTTPWORKER_PORT, then local.settings.json "
        f"Host.LocalHttpPort; default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=Path(os.environ.get("DEVHOST_APP_DIR", ".")),
        help="folder with function_app.py, host.json and local.settings.json "
        "(env DEVHOST_APP_DIR; default .)",
    )
    return parser


def _port(flag: int | None, local_http_port: int | None) -> int:
    if flag is not None:
        return flag
    for name in ("DEVHOST_PORT", "FUNCTIONS_HTTPWORKER_PORT"):
        value = os.environ.get(name, "")
        if value:
            if not value.isdigit():
                raise SettingsFileError(f"{name}={value!r} is not a port number")
            return int(value)
    return local_http_port or DEFAULT_PORT


def function_listing(index: FunctionIndex, base_url: str, route_prefix: str) -> str:
    """The function list in Core Tools' format: `name: [METHODS] url` per function."""
    lines = ["Functions:", ""]
    for function in sorted(index.functions, key=lambda item: item.name.lower()):
        path = "/".join(part for part in (route_prefix, function.route) if part)
        methods = f"[{','.join(function.methods)}] " if function.methods else ""
        lines += [f"\t{function.name}: {methods}{base_url}/{path}", ""]
    for skipped in index.skipped:
        lines += [f"\t{skipped}: not served (the dev host serves HTTP triggers only)", ""]
    return "\n".join(lines)


def _display_host(host: str) -> str:
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1", "localhost") else host  # noqa: S104


def main(argv: Sequence[str] | None = None) -> int:
    """Load settings, index the app, print the function URLs, serve until interrupted."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    # The Azure SDKs log every HTTP request and response with headers at INFO; keep their warnings only.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    app_dir: Path = args.app_dir.resolve()
    try:
        settings = read_local_settings(app_dir)
        applied = apply_to_environment(settings.values)
        port = _port(args.port, settings.local_http_port)
        route_prefix = read_route_prefix(app_dir)
        os.chdir(app_dir)  # the worker runs with the app folder as working directory
        register = find_function_register(import_function_app(app_dir))
        index = index_functions(register, route_prefix)
    except (SettingsFileError, IndexingError) as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 2
    if settings.path is not None:
        print(f"Loaded {len(applied)} of {len(settings.values)} values from {settings.path} (set ones kept)")
    if not index.functions:
        print("devhost: the app has no HTTP functions to serve", file=sys.stderr)
        return 2
    print(function_listing(index, f"http://{_display_host(args.host)}:{port}", route_prefix))
    print("Auth levels are not enforced (like Core Tools locally): every function is callable without a key.")
    print(f"Serving {app_dir / 'function_app.py'} on http://{args.host}:{port} (Ctrl-C to stop)", flush=True)
    web.run_app(
        FunctionHost(index, app_dir).application(),
        host=args.host,
        port=port,
        print=None,
        access_log=None,
        handle_signals=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
