"""GET /api/messages: chat history, newest first, paged with ?limit= and an opaque ?before= cursor; or,
with ?after=<message id>, the messages stored after that one, oldest first (catch-up after a reconnect)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import azure.functions as func

from wps_upstream.errors import BadRequest
from wps_upstream.http import handled, json_response
from wps_upstream.identity import identify_caller
from wps_upstream.payload import json_dumps
from wps_upstream.services import Services

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_DIGITS = re.compile(r"[0-9]{1,4}")  # ASCII digits only: str.isdigit() also takes '²', which int() refuses

blueprint = func.Blueprint()


def page_limit(query: Mapping[str, str]) -> int:
    """?limit= as a number from 1 to MAX_LIMIT (DEFAULT_LIMIT when absent)."""
    raw = query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


@blueprint.function_name("messages")
@blueprint.route(route="messages", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handled(lambda req: "GET messages")
async def list_messages(req: func.HttpRequest, services: Services) -> func.HttpResponse:
    """{"messages": [...], "next": ...}: newest first with a `before` cursor as next, or, with ?after=,
    oldest first with the id to pass as the next `after` (null when caught up)."""
    query = dict(req.params)
    identify_caller(dict(req.headers), query, services.settings)
    limit = page_limit(query)
    before, after = query.get("before") or None, query.get("after") or None
    if before and after:
        raise BadRequest("Pass before (older pages) or after (catch-up), not both.")
    if after:
        messages, following = await services.messages.newer_than(
            hub=services.settings.hub, message_id=after, limit=limit
        )
    else:
        messages, following = await services.messages.page(
            hub=services.settings.hub, limit=limit, before=before
        )
    body = {"messages": [message.to_json() for message in messages], "next": following}
    return json_response(json_dumps(body), headers={"Cache-Control": "no-store"})
