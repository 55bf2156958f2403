"""Who calls /api/negotiate and /api/messages, and which user ids are acceptable."""

from __future__ import annotations

import pytest

from wps_upstream.errors import BadRequest, Unauthorized
from wps_upstream.functions.history import DEFAULT_LIMIT, MAX_LIMIT, page_limit
from wps_upstream.identity import identify_user, validate_user_id
from wps_upstream.settings import Settings

BASE = {
    "WebPubSubConnectionString": "Endpoint=http://localhost:8080;AccessKey=k;Version=1.0;",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}
AZURE = Settings.from_environ({**BASE, "WEBSITE_AUTH_ENABLED": "True"})
LOCAL = Settings.from_environ({**BASE, "NegotiateAllowQueryUserId": "true"})
LOCKED = Settings.from_environ(BASE)


def test_app_service_principal_name_is_the_user() -> None:
    headers = {"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com", "X-MS-CLIENT-PRINCIPAL-ID": "42"}
    assert identify_user(headers, {}, AZURE) == "ann@example.com"


def test_app_service_principal_id_is_used_when_there_is_no_name() -> None:
    assert identify_user({"x-ms-client-principal-id": "42"}, {}, AZURE) == "42"


def test_query_user_id_is_refused_unless_allowed() -> None:
    with pytest.raises(Unauthorized):
        identify_user({}, {"userId": "ann"}, AZURE)


def test_query_user_id_is_used_when_allowed() -> None:
    assert identify_user({}, {"userId": "ann"}, LOCAL) == "ann"


def test_principal_headers_are_ignored_without_app_service_auth() -> None:
    with pytest.raises(Unauthorized):
        identify_user({"x-ms-client-principal-name": "forged"}, {}, LOCKED)


def test_no_user_is_unauthorized_with_a_hint() -> None:
    with pytest.raises(Unauthorized, match="userId"):
        identify_user({}, {}, LOCAL)


@pytest.mark.parametrize("user_id", ["", "   ", "a" * 129, "ann\n", "a\x00b", "\x1b[31m"])
def test_unusable_user_ids_are_refused(user_id: str) -> None:
    with pytest.raises(BadRequest):
        validate_user_id(user_id)


@pytest.mark.parametrize("user_id", ["a", "a" * 128, "Zoë", "李雷", "ann@example.com", "👩‍💻"])
def test_usable_user_ids_are_kept_as_given(user_id: str) -> None:
    assert validate_user_id(user_id) == user_id


def test_history_limit_defaults() -> None:
    assert page_limit({}) == DEFAULT_LIMIT


@pytest.mark.parametrize("raw", ["1", "200"])
def test_history_limit_within_bounds(raw: str) -> None:
    assert page_limit({"limit": raw}) == int(raw)


@pytest.mark.parametrize("raw", ["0", str(MAX_LIMIT + 1), "-1", "ten", "1.5"])
def test_history_limit_out_of_bounds_is_a_clear_bad_request(raw: str) -> None:
    with pytest.raises(BadRequest, match="limit must be a whole number from 1 to 200"):
        page_limit({"limit": raw})
