"""POST /api/eventhandler (every Web PubSub event) and OPTIONS (abuse protection).

Auth level FUNCTION: in Azure the hub's event handler URL carries ?code=<function key>; the
ce-signature check is the real guard and runs on every event.
"""

from __future__ import annotations

import azure.functions as func

from wps_upstream.cloudevents import parse_event, preflight
from wps_upstream.handlers import dispatch
from wps_upstream.responses import answer, http_response
from wps_upstream.runtime import get_runtime

blueprint = func.Blueprint()


@blueprint.function_name("eventhandler")
@blueprint.route(route="eventhandler", methods=["OPTIONS", "POST"], auth_level=func.AuthLevel.FUNCTION)
async def eventhandler(req: func.HttpRequest) -> func.HttpResponse:
    """Validate and dispatch one CloudEvents request from the service."""

    async def handle() -> func.HttpResponse:
        runtime = await get_runtime()
        settings = runtime.settings
        if req.method == "OPTIONS":
            return http_response(preflight(dict(req.headers), settings.allowed_origins))
        event = parse_event(
            dict(req.headers),
            req.get_body() or b"",
            hub=settings.hub,
            access_key=settings.web_pubsub.access_key,
            allowed_origins=settings.allowed_origins,
        )
        return http_response(await dispatch(event, runtime.services))

    headers = req.headers
    what = (
        f"{req.method} eventhandler {headers.get('ce-type') or '-'} event {headers.get('ce-id') or '-'} "
        f"of connection {headers.get('ce-connectionid') or '-'}"
    )
    return await answer(handle, what=what)
