"""The chat page, served at /api/index."""

from __future__ import annotations

import azure.functions as func

from .page import build_chat_page

blueprint = func.Blueprint()

# Read from disk once per process, not per request.
CHAT_PAGE = build_chat_page()


@blueprint.route(route="index", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def index(req: func.HttpRequest) -> func.HttpResponse:
    """The chat page: a small client of /api/negotiate, /api/messages and the Web PubSub service."""
    return func.HttpResponse(
        CHAT_PAGE.html, status_code=200, headers=CHAT_PAGE.headers, mimetype="text/html", charset="utf-8"
    )
