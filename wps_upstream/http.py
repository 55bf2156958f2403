"""Between Azure Functions and the app: responses, and the one mapping from errors to HTTP answers.

Routes are plain functions `async def route(req, services) -> func.HttpResponse` decorated with
`@handled(...)`: it hands them the process's services and turns every exception into its answer, once
for all routes: an AppError into its status and message, anything else into a logged 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

import azure.functions as func

from wps_upstream.cloudevents import EventResponse, Headers, refused
from wps_upstream.errors import AppError
from wps_upstream.payload import REPLY_CONTENT_TYPES
from wps_upstream.services import Services, get_services

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
HttpFunction = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]
Route = Callable[[func.HttpRequest, Services], Awaitable[func.HttpResponse]]


def request_headers(req: func.HttpRequest) -> Headers:
    """The request's headers, read without copying them when azure.functions allows it.

    azure.functions keeps request headers in a dict by lower-case name (`__http_headers__`, in 1.x and
    2.x); copying them through the Mapping interface would cost a Python call per header, per event.
    """
    by_name = getattr(req.headers, "__http_headers__", None)
    return Headers.lowercased(by_name) if isinstance(by_name, dict) else Headers(req.headers)


def http_response(response: EventResponse) -> func.HttpResponse:
    """An EventResponse as a Functions response, with its exact Content-Type (or none for no body)."""
    headers = dict(response.headers)
    mimetype = None
    if content_type := response.content_type:
        headers["Content-Type"] = content_type
        mimetype = _MIMETYPES.get(content_type) or content_type.split(";")[0]
    return func.HttpResponse(response.body, status_code=response.status, headers=headers, mimetype=mimetype)


# The content types the app answers with, and their media types (computed once, not per response).
_MIMETYPES = {content_type: content_type.split(";")[0] for content_type in REPLY_CONTENT_TYPES.values()}


def json_response(
    body: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    """A response whose body is the given JSON text."""
    return http_response(
        EventResponse(status, body.encode("utf-8"), JSON_CONTENT_TYPE, tuple((headers or {}).items()))
    )


def error_response(error: AppError, what: str) -> func.HttpResponse:
    """The answer for an app error: its status and message. 5xx are logged as errors with their cause."""
    if error.status >= 500:
        logger.error("%s failed with %d: %s", what, error.status, error.message, exc_info=error.__cause__)
    else:
        logger.info("%s refused with %d: %s", what, error.status, error.message)
    return http_response(refused(error.status, error.message))


def handled(describe: Callable[[func.HttpRequest], str]) -> Callable[[Route], HttpFunction]:
    """Make a route a Functions HTTP function: services in, every error mapped to its answer.

    `describe(req)` names the request in logs (e.g. the event id), so a 5xx can be traced. The returned
    function takes only `req`: the Functions indexer matches its parameters to the trigger's bindings.
    """

    def decorate(route: Route) -> HttpFunction:
        async def function(req: func.HttpRequest) -> func.HttpResponse:
            try:
                return await route(req, await get_services())
            except AppError as error:
                return error_response(error, describe(req))
            except Exception:
                logger.exception("%s failed with an unexpected error", describe(req))
                return http_response(refused(500, "Internal error; the details are in the function log."))

        # Not functools.wraps: its __wrapped__ would show the indexer the route's (req, services).
        function.__name__ = route.__name__
        function.__qualname__ = route.__qualname__
        function.__doc__ = route.__doc__
        function.__module__ = route.__module__
        return function

    return decorate
