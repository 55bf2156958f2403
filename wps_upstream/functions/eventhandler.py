"""POST /api/eventhandler (every Web PubSub event) and OPTIONS (abuse protection).

Auth level ANONYMOUS: the app authenticates every event itself (webhook_auth): the service's Entra bearer
token when upstream auth is configured, the ce-signature when an access key is known, both when both are;
with neither it refuses every request. A function key would add nothing, and the hub's URL carries none.
"""

from __future__ import annotations

import azure.functions as func

from wps_upstream.cloudevents import parse_event, preflight
from wps_upstream.handlers import dispatch
from wps_upstream.http import handled, http_response, request_headers
from wps_upstream.services import Services
from wps_upstream.webhook_auth import AUTHORIZATION_HEADER

blueprint = func.Blueprint()


def describe(req: func.HttpRequest) -> str:
    """The request as log lines name it: method, event type, event id and connection."""
    headers = req.headers
    return (
        f"{req.method} eventhandler {headers.get('ce-type') or '-'} event {headers.get('ce-id') or '-'} "
        f"of connection {headers.get('ce-connectionid') or '-'}"
    )


@blueprint.function_name("eventhandler")
@blueprint.route(route="eventhandler", methods=["OPTIONS", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@handled(describe)
async def eventhandler(req: func.HttpRequest, services: Services) -> func.HttpResponse:
    """Validate and dispatch one CloudEvents request from the service."""
    headers = request_headers(req)
    if req.method == "OPTIONS":
        return http_response(preflight(headers, services.webhook_auth))
    auth = await services.webhook_auth.authenticate(headers.get(AUTHORIZATION_HEADER))
    event = parse_event(headers, req.get_body() or b"", hub=services.settings.hub, auth=auth)
    return http_response(await dispatch(event, services))
