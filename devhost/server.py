"""The aiohttp application that routes requests to the indexed functions."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from devhost.indexing import FunctionIndex, HttpFunction
from devhost.invocation import build_request, build_response, invoke
from devhost.routing import split_path

log = logging.getLogger("devhost")

# Core Tools accepts request bodies up to 100 MB (host's default maxRequestBodySize is about that)
MAX_BODY_BYTES = 100 * 1024 * 1024


def _thread_count() -> int | None:
    # The Python worker sizes its pool for sync functions with this setting; unset means Python's default.
    value = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


@dataclass
class FunctionHost:
    """Routes each request to the first function whose template and method match, like the host."""

    index: FunctionIndex
    app_dir: Path
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=_thread_count(), thread_name_prefix="function")
    )

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

    async def _invoke(
        self, function: HttpFunction, route_params: dict[str, str], request: web.Request
    ) -> web.StreamResponse:
        started = time.monotonic()
        invocation_id = "-"
        # Outside the try: aiohttp's own errors here (413 for a too large body) are answered as they are.
        func_request = await build_request(request, route_params)
        try:
            result, context = await invoke(function, func_request, self.executor, str(self.app_dir))
            invocation_id = context.invocation_id
            response = build_response(function, result)
        except Exception:
            # Like the host: the caller gets a bare 500; the traceback goes to the log only.
            log.exception(
                "Executed 'Functions.%s' (Failed, %s %s)", function.name, request.method, request.path_qs
            )
            return web.Response(status=500)
        elapsed_ms = (time.monotonic() - started) * 1000
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms) %s %s -> %d",
            function.name,
            invocation_id,
            elapsed_ms,
            request.method,
            request.path_qs,
            response.status,
        )
        return response

    def application(self) -> web.Application:
        """An aiohttp app sending every path and method through `handle`."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{path:.*}", self.handle)

        async def shutdown(_app: web.Application) -> None:
            self.executor.shutdown(wait=False, cancel_futures=True)

        app.on_cleanup.append(shutdown)
        return app
