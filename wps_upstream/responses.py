"""Between Azure Functions and the app: build func.HttpResponse objects; map errors to HTTP in one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

from wps_upstream.cloudevents import EventResponse, json_body, refused
from wps_upstream.errors import AppError

logger = logging.getLogger(__name__)


def http_response(response: EventResponse) -> func.HttpResponse:
    """An EventResponse as a Functions response, with its exact Content-Type (or none for no body)."""
    headers = dict(response.headers)
    mimetype = None
    if response.content_type:
        headers["Content-Type"] = response.content_type
        mimetype = response.content_type.split(";")[0]
    return func.HttpResponse(response.body, status_code=response.status, headers=headers, mimetype=mimetype)


def json_response(value: Any, status: int = 200) -> func.HttpResponse:
    """A JSON response (compact UTF-8)."""
    return http_response(EventResponse(status, json_body(value), "application/json; charset=utf-8"))


def error_response(error: AppError) -> func.HttpResponse:
    """The HTTP answer for an app error: its status and its message as plain text."""
    return http_response(refused(error.status, error.message))


async def answer(call: Callable[[], Awaitable[func.HttpResponse]], *, what: str) -> func.HttpResponse:
    """Run a request handler; turn app errors into their responses and anything else into a logged 500.

    `what` names the request in logs (e.g. the event id), so a 5xx can be traced.
    """
    try:
        return await call()
    except AppError as error:
        if error.status >= 500:
            logger.error("%s failed with %d: %s", what, error.status, error.message, exc_info=error.__cause__)
        else:
            logger.info("%s refused with %d: %s", what, error.status, error.message)
        return error_response(error)
    except Exception:
        logger.exception("%s failed with an unexpected error", what)
        return error_response(AppError("Internal error; the details are in the function log."))
