"""GET /api/negotiate: a client access URL for the calling user (anonymous route; own user check)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import azure.functions as func

from wps_upstream.http import handled, json_response
from wps_upstream.identity import identify_user
from wps_upstream.payload import json_dumps
from wps_upstream.services import Services
from wps_upstream.times import iso_time

blueprint = func.Blueprint()


@blueprint.function_name("negotiate")
@blueprint.route(route="negotiate", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handled(lambda req: "GET negotiate")
async def negotiate(req: func.HttpRequest, services: Services) -> func.HttpResponse:
    """{"url", "baseUrl", "token", "userId", "hub", "expiresOn"}; the token is signed locally (no I/O)."""
    settings = services.settings
    user_id = identify_user(dict(req.headers), dict(req.params), settings)
    minutes = settings.token_lifetime_minutes
    expires_on = datetime.now(UTC) + timedelta(minutes=minutes)
    presence = settings.presence_broadcast
    # With PresenceBroadcast=group:<name>, clients opt in to presence by joining that group.
    roles = [f"webpubsub.joinLeaveGroup.{presence.group}"] if presence.mode == "group" else None
    token = await services.service.get_client_access_token(
        user_id=user_id, minutes_to_expire=minutes, roles=roles
    )
    body = {
        "url": token["url"],
        "baseUrl": token["baseUrl"],
        "token": token["token"],
        "userId": user_id,
        "hub": settings.hub,
        "expiresOn": iso_time(expires_on),
    }
    return json_response(
        json_dumps(body), headers={"Cache-Control": "no-store"}
    )  # a bearer token: never cached
