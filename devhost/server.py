"""The aiohttp application: requests to the indexed HTTP functions, runs of timer functions on demand."""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from devhost.indexing import FunctionIndex, HttpFunction
from devhost.invocation import InvocationContext, build_request, build_response, invoke
from devhost.routing import split_path
from devhost.shutdown import close_client_sessions
from devhost.timers import TimerRunner

log = logging.getLogger("devhost")

# Core Tools accepts request bodies up to 100 MB (host's default maxRequestBodySize is about that)
MAX_BODY_BYTES = 100 * 1024 * 1024
RUN_BODY_EXAMPLE = '{"input": ""}'


def _thread_count() -> int | None:
    # The Python worker sizes its pool for sync functions with this setting; unset means Python's default.
    value = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def outcome(status: int) -> str:
    """The word for an HTTP invocation's log line: what the answer says, not only that no exception flew."""
    if status >= 500:
        return "Server error"
    if status >= 400:
        return "Client error"
    return "Succeeded"


def _is_admin_run(parts: list[str]) -> bool:
    """`/admin/functions/<name>`: the host's route to run a function now (matched case-insensitively)."""
    return len(parts) == 3 and parts[0].lower() == "admin" and parts[1].lower() == "functions"


def _run_request_problem(content_type: str, body: bytes) -> web.Response | None:
    """The 415/400 answer for a run request the host would refuse, or None if it is acceptable."""
    if content_type not in ("application/json", "text/json") and not content_type.endswith("+json"):
        return web.Response(
            status=415,
            text=f"send the body as JSON with Content-Type: application/json, e.g. {RUN_BODY_EXAMPLE}\n",
        )
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("input", ""), str | None):
        return web.Response(status=400, text=f"the body must be a JSON object like {RUN_BODY_EXAMPLE}\n")
    return None


@dataclass
class FunctionHost:
    """Routes each request to the first function whose template and method match, like the host, and runs
    timer functions on their schedules (`start`) and on demand (`POST /admin/functions/<name>`)."""

    index: FunctionIndex
    app_dir: Path
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=_thread_count(), thread_name_prefix="function")
    )
    timers: TimerRunner = field(init=False)

    def __post_init__(self) -> None:
        self.timers = TimerRunner(self.index.timers, self.executor, str(self.app_dir))

    def resolve(self, raw_path: str, method: str) -> tuple[HttpFunction | None, dict[str, str], set[str]]:
        """The function for this path and method, its route parameters, and (if none) the allowed methods."""
        parts = split_path(raw_path)
        allowed: set[str] = set()
        for function in self.index.functions:
            params = function.template.match(parts)
            if params is None:
                continue
            if function.allows(method):
                return function, params, set()
            allowed.update(function.methods or ())
        return None, {}, allowed

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        parts = split_path(raw_path)
        if _is_admin_run(parts):
            return await self.run_on_demand(request, unquote(parts[2]))
        function, route_params, allowed = self.resolve(raw_path, request.method)
        if function is None:
            if allowed:
                methods = ", ".join(sorted(allowed))
                return web.Response(
                    status=405,
                    text=f"method {request.method} is not allowed here; allowed: {methods}\n",
                    headers={"Allow": methods},
                )
            return web.Response(status=404, text=f"no function serves {request.path}\n")
        return await self._invoke(function, route_params, request)

    async def run_on_demand(self, request: web.Request, name: str) -> web.Response:
        """`POST /admin/functions/<name>` with `{"input": ""}`: 202, and the timer function runs once."""
        if request.method != "POST":
            return web.Response(
                status=405, text="use POST to run a function now\n", headers={"Allow": "POST"}
            )
        problem = _run_request_problem(request.content_type, await request.read())
        if problem is not None:
            return problem
        timer = self.index.timer(name)
        if timer is None:
            return self._not_a_timer(name)
        self.timers.run_now(timer, f"run on demand (POST {request.path})")
        return web.Response(status=202)

    def _not_a_timer(self, name: str) -> web.Response:
        if self.index.http_function(name) is not None:
            return web.Response(
                status=400, text=f"{name} is an HTTP function: call its URL instead (see the list at start)\n"
            )
        timers = ", ".join(timer.name for timer in self.index.timers) or "none"
        return web.Response(
            status=404, text=f"no timer function named {name!r} (timer functions here: {timers})\n"
        )

    async def _invoke(
        self, function: HttpFunction, route_params: dict[str, str], request: web.Request
    ) -> web.StreamResponse:
        started = time.monotonic()
        context = InvocationContext(function.name, str(self.app_dir))
        # Outside the try: aiohttp's own errors here (413 for a too large body) are answered as they are.
        func_request = await build_request(request, route_params)
        template = "Executed 'Functions.%s' (%s, Id=%s, Duration=%.0fms) %s %s -> %d"
        try:
            result = await invoke(function, func_request, context, self.executor)
            response = build_response(function, result)
        except Exception:
            # Like the host: the caller gets a bare 500; the traceback goes to the log only.
            elapsed_ms = (time.monotonic() - started) * 1000
            details = (context.invocation_id, elapsed_ms, request.method, request.path_qs, 500)
            log.exception(template, function.name, "Failed", *details)
            return web.Response(status=500)
        elapsed_ms = (time.monotonic() - started) * 1000
        details = (context.invocation_id, elapsed_ms, request.method, request.path_qs, response.status)
        level = logging.WARNING if response.status >= 500 else logging.INFO
        log.log(level, template, function.name, outcome(response.status), *details)
        return response

    def application(self) -> web.Application:
        """An aiohttp app sending every path and method through `handle`."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    def start(self) -> None:
        """Start the timer schedules (once the server listens)."""
        self.timers.start()

    async def stop_timers(self, grace_s: float) -> None:
        """Stop the schedules; timer runs in progress get grace_s to end."""
        await self.timers.stop(grace_s)

    async def close(self) -> None:
        """Once the server and the timers have stopped: close what the app left open, free the threads."""
        await close_client_sessions()
        self.executor.shutdown(wait=False, cancel_futures=True)
