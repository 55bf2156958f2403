"""Who is calling /api/negotiate and /api/messages (the webhook is authenticated by its signature)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from wps_upstream.errors import BadRequest, Unauthorized
from wps_upstream.settings import Settings

MAX_USER_ID_LENGTH = 128
# Set by App Service Authentication (Easy Auth) after it has signed the user in.
PRINCIPAL_HEADERS = ("x-ms-client-principal-name", "x-ms-client-principal-id")


def validate_user_id(user_id: str) -> str:
    """Return the user id if usable: 1-128 characters, not blank, no control characters."""
    if not user_id or not user_id.strip():
        raise BadRequest("The user id is empty.")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise BadRequest(f"The user id is longer than {MAX_USER_ID_LENGTH} characters.")
    if any(unicodedata.category(char) == "Cc" for char in user_id):
        raise BadRequest("The user id contains control characters.")
    return user_id


def identify_user(headers: Mapping[str, str], query: Mapping[str, str], settings: Settings) -> str:
    """The caller's user id: App Service Authentication first, then ?userId= when allowed, else 401."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if settings.trust_client_principal:
        for name in PRINCIPAL_HEADERS:
            if lowered.get(name):
                return validate_user_id(lowered[name])
    if settings.negotiate_allow_query_user_id and "userId" in query:
        return validate_user_id(query["userId"])
    if settings.negotiate_allow_query_user_id:
        raise Unauthorized("Sign in first, or (local development) pass ?userId=<name>.")
    raise Unauthorized("Sign in first: this app needs App Service Authentication to know who you are.")
