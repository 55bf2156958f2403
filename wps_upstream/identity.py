"""Who is calling /api/negotiate and /api/messages (the webhook is authenticated by its signature).

With App Service Authentication on, the user id is the stable principal id scoped by its identity
provider (`aad:<object id>`), never the principal name, which can change and is not unique across
providers; the name is kept as the display name. Locally, `NegotiateAllowQueryUserId=true` lets
`?userId=` pick the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wps_upstream import ids
from wps_upstream.errors import Unauthorized
from wps_upstream.settings import Settings

# Set by App Service Authentication (Easy Auth) after it has signed the user in; it removes copies sent
# by clients, which is why they are trusted only when it is on.
PRINCIPAL_ID = "x-ms-client-principal-id"
PRINCIPAL_IDP = "x-ms-client-principal-idp"
PRINCIPAL_NAME = "x-ms-client-principal-name"


@dataclass(frozen=True)
class Caller:
    """The signed-in user: a stable id, and a name to show when there is one."""

    user_id: str
    user_name: str | None = None


def identify_caller(headers: Mapping[str, str], query: Mapping[str, str], settings: Settings) -> Caller:
    """The caller: App Service Authentication's principal, then ?userId= when allowed locally, else 401."""
    if settings.app_service_auth_enabled:
        lowered = {name.lower(): value for name, value in headers.items()}
        principal = lowered.get(PRINCIPAL_ID)
        if principal:
            provider = lowered.get(PRINCIPAL_IDP)
            user_id = ids.user_id(f"{provider}:{principal}" if provider else principal)
            return Caller(user_id, ids.display_name(lowered.get(PRINCIPAL_NAME) or ""))
    if settings.negotiate_allow_query_user_id:
        if "userId" in query:
            return Caller(ids.user_id(query["userId"]))
        raise Unauthorized("Sign in first, or (local development) pass ?userId=<name>.")
    raise Unauthorized("Sign in first: this app needs App Service Authentication to know who you are.")
