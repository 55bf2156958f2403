"""GET /api/messages: chat history, newest first, paged with ?limit= and an opaque ?before= cursor."""

from __future__ import annotations

from collections.abc import Mapping

import azure.functions as func

from wps_upstream.errors import BadRequest, DependencyFailed
from wps_upstream.identity import identify_user
from wps_upstream.responses import answer, json_response
from wps_upstream.runtime import get_runtime
from wps_upstream.store import InvalidCursor, StoreUnavailable

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

blueprint = func.Blueprint()


def page_limit(query: Mapping[str, str]) -> int:
    """?limit= as a number from 1 to MAX_LIMIT (DEFAULT_LIMIT when absent)."""
    raw = query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


@blueprint.function_name("messages")
@blueprint.route(route="messages", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def list_messages(req: func.HttpRequest) -> func.HttpResponse:
    """{"messages": [...newest first...], "next": cursor or null}."""

    async def handle() -> func.HttpResponse:
        runtime = await get_runtime()
        settings = runtime.settings
        query = dict(req.params)
        identify_user(dict(req.headers), query, settings)
        limit = page_limit(query)
        before = query.get("before") or None
        try:
            messages, cursor = await runtime.message_store.page(hub=settings.hub, limit=limit, before=before)
        except InvalidCursor as error:
            raise BadRequest("before is not a cursor from this app; start again without it.") from error
        except StoreUnavailable as error:
            raise DependencyFailed("History is unavailable right now (storage); try again.") from error
        response = json_response({"messages": [message.to_json() for message in messages], "next": cursor})
        response.headers["Cache-Control"] = "no-store"
        return response

    return await answer(handle, what="GET messages")
