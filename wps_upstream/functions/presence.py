"""GET /api/presence: who is online in the hub, one entry per user (anonymous route; own user check)."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from wps_upstream.http import handled, json_response
from wps_upstream.identity import identify_caller
from wps_upstream.payload import json_dumps
from wps_upstream.services import Services
from wps_upstream.times import iso_time

blueprint = func.Blueprint()


@blueprint.function_name("presence")
@blueprint.route(route="presence", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handled(lambda req: "GET presence")
async def presence(req: func.HttpRequest, services: Services) -> func.HttpResponse:
    """{"users": [{"userId", "userName"?, "connections", "since"}...oldest first], "asOf": time}.

    One read of the hub's presence rows: the cost follows the online connections, not the history.
    """
    identify_caller(dict(req.headers), dict(req.params), services.settings)
    as_of = iso_time(datetime.now(UTC))
    users = await services.presence.online(hub=services.settings.hub)
    body = {"users": [user.to_json() for user in users], "asOf": as_of}
    return json_response(json_dumps(body), headers={"Cache-Control": "no-store"})
