"""GET /api/negotiate: a client access URL for the calling user (anonymous route; own user check)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import azure.functions as func

from wps_upstream.handlers import USER_NAME_QUERY
from wps_upstream.http import handled, json_response
from wps_upstream.identity import identify_caller
from wps_upstream.payload import json_dumps
from wps_upstream.services import Services
from wps_upstream.times import iso_time

blueprint = func.Blueprint()


@blueprint.function_name("negotiate")
@blueprint.route(route="negotiate", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handled(lambda req: "GET negotiate")
async def negotiate(req: func.HttpRequest, services: Services) -> func.HttpResponse:
    """{"url", "baseUrl", "token", "userId", "userName"?, "hub", "expiresOn", "presenceGroup"?}.

    The display name rides in the client URL's query: the connect handler keeps it in the connection's
    state, so every later event of the connection carries it without a storage or REST call.
    """
    settings = services.settings
    caller = identify_caller(dict(req.headers), dict(req.params), settings)
    minutes = settings.token_lifetime_minutes
    expires_on = datetime.now(UTC) + timedelta(minutes=minutes)
    presence = settings.presence_broadcast
    # With PresenceBroadcast=group:<name>, clients opt in to presence by joining that group.
    roles = [f"webpubsub.joinLeaveGroup.{presence.group}"] if presence.mode == "group" else None
    token = await services.service.get_client_access_token(
        user_id=caller.user_id, minutes_to_expire=minutes, roles=roles
    )
    body: dict[str, str] = {"url": token["url"], "baseUrl": token["baseUrl"], "token": token["token"]}
    body["userId"] = caller.user_id
    if caller.user_name is not None:
        body["url"] += "&" + urlencode({USER_NAME_QUERY: caller.user_name})
        body["userName"] = caller.user_name
    body |= {"hub": settings.hub, "expiresOn": iso_time(expires_on)}
    if presence.mode == "group" and presence.group is not None:
        body["presenceGroup"] = presence.group  # the group to join for presence notices
    # A bearer token: never cached.
    return json_response(json_dumps(body), headers={"Cache-Control": "no-store"})
