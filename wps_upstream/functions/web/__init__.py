"""The chat page, served at /api/index."""

from __future__ import annotations

import functools

import azure.functions as func

from .page import ChatPage, build_chat_page

blueprint = func.Blueprint()


@functools.cache
def chat_page() -> ChatPage:
    """The page, read from disk on the first request (not at import: a missing asset must not stop the
    other functions from being indexed) and kept for the process."""
    return build_chat_page()


@blueprint.function_name("index")
@blueprint.route(route="index", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def index(req: func.HttpRequest) -> func.HttpResponse:
    """The chat page: a small client of /api/negotiate, /api/messages and the Web PubSub service."""
    page = chat_page()
    return func.HttpResponse(
        page.html, status_code=200, headers=page.headers, mimetype="text/html", charset="utf-8"
    )
