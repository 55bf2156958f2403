"""The chat page, served at /api/index (placeholder until the page lands)."""

from __future__ import annotations

import azure.functions as func

blueprint = func.Blueprint()


@blueprint.route(route="index", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def index(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("<!doctype html><title>Chat</title><p>Chat page coming.</p>", mimetype="text/html")
