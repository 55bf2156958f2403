"""`python -m devhost` (or `functions-devhost`): serve function_app.py's HTTP functions and run its timer
functions like `func start`, without Core Tools."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from aiohttp import web

from devhost.command_line import program_name
from devhost.indexing import (
    FunctionIndex,
    IndexingError,
    find_function_register,
    import_function_app,
    index_functions,
)
from devhost.local_settings import (
    LocalSettings,
    SettingsFileError,
    apply_to_environment,
    read_local_settings,
    read_route_prefix,
)
from devhost.processes import next_free_port, port_owner
from devhost.server import FunctionHost

DEFAULT_PORT = 7071
# Requests and timer runs in progress get this long to end after Ctrl-C / SIGTERM; `make start` waits 10 s
# before it kills the process.
SHUTDOWN_GRACE_S = 5.0


class ListenError(RuntimeError):
    """The server cannot listen on the address; the message says why and what to do."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve the HTTP functions and run the timer functions of a Python v2 function_app.py "
        "the way `func start` does.",
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


def function_listing(
    index: FunctionIndex, base_url: str, route_prefix: str, now: datetime | None = None
) -> str:
    """The function list in Core Tools' format: `name: [METHODS] url` per HTTP function, `name:
    timerTrigger` per timer function (with its schedule and next run here)."""
    now = now or datetime.now()
    entries: list[tuple[str, str]] = []
    for function in index.functions:
        path = "/".join(part for part in (route_prefix, function.route) if part)
        methods = f"[{','.join(function.methods)}] " if function.methods else ""
        entries.append((function.name, f"{methods}{base_url}/{path}"))
    for timer in index.timers:
        declared = timer.schedule_expression
        source = f" from {declared}" if declared != timer.schedule.text else ""
        when = "on startup, then " if timer.run_on_startup else ""
        due = timer.schedule.next_after(now).isoformat(sep=" ", timespec="seconds")
        entries.append(
            (timer.name, f"timerTrigger ('{timer.schedule.text}'{source}; {when}next run at {due})")
        )
    lines = ["Functions:", ""]
    for name, text in sorted(entries, key=lambda entry: entry[0].lower()):
        lines += [f"\t{name}: {text}", ""]
    for skipped in index.skipped:
        lines += [f"\t{skipped}: not run (the dev host runs HTTP and timer triggers only)", ""]
    return "\n".join(lines)


def _display_host(host: str) -> str:
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1", "localhost") else host  # noqa: S104


def missing_settings_note(app_dir: Path) -> str:
    """What to say when the app folder has no local.settings.json, and how to make one from the example."""
    path = app_dir / "local.settings.json"
    note = f"No {path}: app settings come only from the environment."
    example = app_dir / "local.settings.json.example"
    if example.is_file():
        where = "" if app_dir == Path.cwd().resolve() else f"cd {app_dir} && "
        note += f" To start from the example: {where}cp local.settings.json.example local.settings.json"
    return note


def _settings_note(settings: LocalSettings, applied: list[str], app_dir: Path) -> str:
    if settings.path is None:
        return missing_settings_note(app_dir)
    return f"Loaded {len(applied)} of {len(settings.values)} values from {settings.path} (set ones kept)"


def _listen_error(exc: OSError, host: str, port: int, prog: str) -> ListenError:
    if exc.errno == errno.EADDRINUSE:
        owner = port_owner(port)
        by = f" by {owner}" if owner else ""
        other = next_free_port(port, host)
        return ListenError(
            f"port {port} is already in use{by}. "
            f"Stop that process, or pick another port: {prog} --port {other}"
        )
    return ListenError(
        f"cannot listen on {host}:{port} ({exc.strerror}); pick another one with --host / --port"
    )


async def serve(
    function_host: FunctionHost, host: str, port: int, prog: str, ready: Callable[[], None]
) -> None:
    """Listen, start the timers, call `ready`, and run until SIGINT or SIGTERM; then stop the server and
    the timers (what is in progress gets the grace), then close the app's open client sessions."""
    runner = web.AppRunner(function_host.application(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise _listen_error(exc, host, port, prog) from None
        function_host.start()
        ready()
        await stop.wait()
    finally:
        # Requests and timer runs in progress end side by side, so the stop takes the grace once.
        await asyncio.gather(runner.cleanup(), function_host.stop_timers(SHUTDOWN_GRACE_S))
        await function_host.close()


def _load(args: argparse.Namespace) -> tuple[FunctionIndex, str, int, str]:
    """Settings, route prefix, port and the indexed app; SettingsFileError or IndexingError if unusable."""
    app_dir: Path = args.app_dir.resolve()
    settings = read_local_settings(app_dir)
    applied = apply_to_environment(settings.values)
    note = _settings_note(settings, applied, app_dir)
    port = _port(args.port, settings.local_http_port)
    route_prefix = read_route_prefix(app_dir)
    os.chdir(app_dir)  # the worker runs with the app folder as working directory
    index = index_functions(find_function_register(import_function_app(app_dir)), route_prefix)
    if not index.functions and not index.timers:
        raise IndexingError(f"{app_dir / 'function_app.py'} has no HTTP or timer functions to run")
    return index, route_prefix, port, note


def main(argv: Sequence[str] | None = None) -> int:
    """Load settings, index the app, print the functions, serve until interrupted."""
    prog = program_name("devhost")
    args = _parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    # The Azure SDKs log every HTTP request and response with headers at INFO; keep their warnings only.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    try:
        index, route_prefix, port, note = _load(args)
    except (SettingsFileError, IndexingError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    app_dir = Path.cwd()
    function_host = FunctionHost(index, app_dir)

    def ready() -> None:
        print(note)
        print(_startup_text(index, f"http://{_display_host(args.host)}:{port}", route_prefix))
        print(
            f"Serving {app_dir / 'function_app.py'} on http://{args.host}:{port} (Ctrl-C to stop)", flush=True
        )

    try:
        asyncio.run(serve(function_host, args.host, port, prog, ready))
    except ListenError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


def _startup_text(index: FunctionIndex, base_url: str, route_prefix: str) -> str:
    lines = [function_listing(index, base_url, route_prefix)]
    if index.functions:
        lines.append(
            "Auth levels are not enforced (like Core Tools locally): "
            "every function is callable without a key."
        )
    if index.timers:
        lines.append(
            "Run a timer function now: curl -X POST -H 'Content-Type: application/json' "
            f'-d \'{{"input": ""}}\' {base_url}/admin/functions/<name>'
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
