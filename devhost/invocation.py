"""One function invocation: aiohttp request -> func.HttpRequest -> user function -> aiohttp response,
or, for a timer, func.TimerRequest -> user function."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions.timer import TimerRequest  # what the worker builds; func.TimerRequest is abstract
from multidict import CIMultiDict

from devhost.indexing import HttpFunction, TimerFunction

log = logging.getLogger("devhost")


class InvocationContext(func.Context):
    """What a function gets as `context`: invocation id and function name (no tracing, no retries)."""

    def __init__(self, function_name: str, directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._directory = directory
        self._local = threading.local()
        self._local.invocation_id = self._invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


class HttpOut(func.Out[func.HttpResponse]):
    """The value of a named HTTP output binding (`func.Out[func.HttpResponse]` parameter)."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Name/value pairs as azure.functions takes them: one string per name, repeated values joined with a
    comma (the host's StringValues.ToString() does the same)."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


async def build_request(request: web.Request, route_params: Mapping[str, str]) -> func.HttpRequest:
    """The func.HttpRequest the worker would build for this aiohttp request."""
    body = await request.read()
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=_joined((name.lower(), value) for name, value in request.headers.items()),
        params=_joined(request.rel_url.query.items()),
        route_params=dict(route_params),
        body=body,
    )


def build_response(function: HttpFunction, result: Any) -> web.Response:
    """The HTTP answer for what the function returned (or set on its output binding)."""
    if result is None:
        return web.Response(status=204)  # the host answers 204 when a function gives no response
    if isinstance(result, str):
        return web.Response(
            status=200, body=result.encode("utf-8"), headers={"Content-Type": "text/plain; charset=utf-8"}
        )
    if not isinstance(result, func.HttpResponse):
        raise TypeError(
            f"function {function.name} returned {type(result).__name__}; expected func.HttpResponse or str"
        )
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in result.headers.items():
        headers.add(name, value)
    if "content-type" not in headers:
        # the same rule as azure.functions' HttpResponseConverter: charset only for text/* types
        mimetype = result.mimetype
        headers["Content-Type"] = (
            f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
        )
    repeated = sorted(
        {name for name in headers if name.lower() != "set-cookie" and len(headers.getall(name)) > 1}
    )
    if repeated:
        log.warning(
            "function %s sent repeated headers %s; the dev host sends every value, Azure keeps only the last",
            function.name,
            ", ".join(repeated),
        )
    return web.Response(status=int(result.status_code), headers=headers, body=result.get_body())


async def _call(
    user_function: Callable[..., Any], is_async: bool, kwargs: dict[str, Any], executor: Executor
) -> Any:
    """Run the user function: `async def` on this loop, plain functions in the thread pool (as the worker)."""
    if is_async:
        return await user_function(**kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, lambda: user_function(**kwargs))


async def invoke(
    function: HttpFunction, request: func.HttpRequest, context: InvocationContext, executor: Executor
) -> Any:
    """Call an HTTP function and return its result (or the value set on its output binding)."""
    kwargs: dict[str, Any] = {function.trigger_arg: request}
    output = None
    if function.output_arg != "$return":
        output = HttpOut()
        kwargs[function.output_arg] = output
    if function.context_arg:
        kwargs[function.context_arg] = context
    result = await _call(function.user_function, function.is_async, kwargs, executor)
    if output is not None:
        result = output.get()
    return result


async def invoke_timer(function: TimerFunction, context: InvocationContext, executor: Executor) -> None:
    """Call a timer function once. `past_due` is False: the dev host keeps no schedule state to find missed
    runs, and its schedule status is empty, as the host's is when schedule monitoring is off."""
    kwargs: dict[str, Any] = {function.trigger_arg: TimerRequest(past_due=False)}
    if function.context_arg:
        kwargs[function.context_arg] = context
    await _call(function.user_function, function.is_async, kwargs, executor)
