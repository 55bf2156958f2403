"""Who calls /api/negotiate and /api/messages, and which user ids are acceptable."""

from __future__ import annotations

import pytest

from tests.constants import web_pubsub_connection_string
from wps_upstream import ids
from wps_upstream.errors import BadRequest, ConfigurationError, Unauthorized
from wps_upstream.functions.history import DEFAULT_LIMIT, MAX_LIMIT, page_limit
from wps_upstream.identity import Caller, identify_caller
from wps_upstream.settings import Settings

BASE = {
    "WebPubSubConnectionString": web_pubsub_connection_string("http://localhost:8080"),
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}
AZURE = Settings.from_environ({**BASE, "WEBSITE_AUTH_ENABLED": "True"})
LOCAL = Settings.from_environ({**BASE, "NegotiateAllowQueryUserId": "true"})
LOCKED = Settings.from_environ(BASE)
PRINCIPAL = {
    "X-MS-CLIENT-PRINCIPAL-ID": "3f2c9a4e-0000-4000-8000-000000000042",
    "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    "X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com",
}


def test_app_service_user_is_the_stable_principal_id_scoped_by_its_provider() -> None:
    caller = identify_caller(PRINCIPAL, {}, AZURE)
    assert caller == Caller("aad:3f2c9a4e-0000-4000-8000-000000000042", "ann@example.com")


def test_app_service_principal_name_is_only_the_display_name() -> None:
    caller = identify_caller(
        {**PRINCIPAL, "X-MS-CLIENT-PRINCIPAL-NAME": "someone.else@example.com"}, {}, AZURE
    )
    assert caller.user_id == "aad:3f2c9a4e-0000-4000-8000-000000000042"


def test_a_display_name_that_breaks_the_rules_is_left_out() -> None:
    caller = identify_caller({**PRINCIPAL, "X-MS-CLIENT-PRINCIPAL-NAME": "ann\u202emoc.evil"}, {}, AZURE)
    assert caller.user_name is None


def test_query_user_id_is_refused_unless_allowed() -> None:
    with pytest.raises(Unauthorized):
        identify_caller({}, {"userId": "ann"}, AZURE)


def test_query_user_id_is_used_when_allowed() -> None:
    assert identify_caller({}, {"userId": "ann"}, LOCAL) == Caller("ann")


@pytest.mark.parametrize("settings", [LOCKED, LOCAL], ids=["locked", "query-user-ids-allowed"])
def test_principal_headers_are_ignored_without_app_service_auth(settings: Settings) -> None:
    with pytest.raises(Unauthorized):
        identify_caller(PRINCIPAL, {}, settings)


def test_no_user_is_unauthorized_with_a_hint() -> None:
    with pytest.raises(Unauthorized, match="userId"):
        identify_caller({}, {}, LOCAL)


def test_query_user_ids_are_refused_as_a_configuration_error_in_azure() -> None:
    with pytest.raises(ConfigurationError, match="NegotiateAllowQueryUserId") as caught:
        Settings.from_environ({**BASE, "NegotiateAllowQueryUserId": "true", "WEBSITE_INSTANCE_ID": "a1b2"})
    assert "local development only" in caught.value.message


@pytest.mark.parametrize(
    ("user_id", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a" * 129, "longer than 128"),
        ("ann\n", "space"),
        ("a\x00b", "control"),
        ("\x1b[31m", "control"),
        ("a\u202eevil", "format"),
        ("ad\u200bmin", "format"),
        ("\u2060admin", "format"),
        (" admin ", "space"),
        ("admin ", "space"),
        ("a\u2028b", "line separators"),
        ("a\u2029b", "paragraph separators"),
        ("a\ud800b", "surrogates"),
    ],
)
def test_unusable_user_ids_are_refused_saying_why(user_id: str, problem: str) -> None:
    with pytest.raises(BadRequest, match=problem):
        ids.user_id(user_id)


@pytest.mark.parametrize(
    "user_id",
    ["a", "a" * 128, "Zoë", "李雷", "ann@example.com", "👩\u200d💻", "❤\ufe0f\u200d🔥", "ann smith"],
)
def test_usable_user_ids_are_kept_as_given(user_id: str) -> None:
    assert ids.user_id(user_id) == user_id


def test_user_ids_are_nfc_normalised() -> None:
    assert ids.user_id("Zoe\u0301") == "Zo\u00e9"


def test_event_user_ids_must_already_be_normalised() -> None:
    with pytest.raises(BadRequest, match="normal form C"):
        ids.event_user_id("Zoe\u0301")


def test_history_limit_defaults() -> None:
    assert page_limit({}) == DEFAULT_LIMIT


@pytest.mark.parametrize("raw", ["1", "200"])
def test_history_limit_within_bounds(raw: str) -> None:
    assert page_limit({"limit": raw}) == int(raw)


@pytest.mark.parametrize("raw", ["0", str(MAX_LIMIT + 1), "-1", "ten", "1.5", "²", "٣", "1" * 400])
def test_history_limit_out_of_bounds_is_a_clear_bad_request(raw: str) -> None:
    with pytest.raises(BadRequest, match="limit must be a whole number from 1 to 200"):
        page_limit({"limit": raw})
