"""The dev host serving the `basic` fixture app as a real process: requests in, responses out."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from tests.devhost.conftest import wait_until

if TYPE_CHECKING:
    from tests.devhost.conftest import DevHost


def test_function_urls_are_listed_like_core_tools(basic_app: DevHost) -> None:
    port = basic_app.base_url.rsplit(":", 1)[1]
    assert f"\techo: [GET,POST,PUT] http://localhost:{port}/api/echo/{{id:int}}\n" in basic_app.log()
    assert f"\trenamed: http://localhost:{port}/api/anything\n" in basic_app.log()


def test_functions_with_other_triggers_are_listed_as_not_run(basic_app: DevHost) -> None:
    assert (
        "\tfrom_queue (queueTrigger trigger): not run (the dev host runs HTTP and timer triggers only)\n"
        in (basic_app.log())
    )


def test_startup_output_says_auth_levels_are_not_enforced(basic_app: DevHost) -> None:
    assert "Auth levels are not enforced" in basic_app.log()


def test_function_level_auth_function_answers_without_a_key(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/echo/1").status == 200


def test_admin_level_function_answers_without_a_key(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/anything").status == 200


def test_request_method_and_full_url_reach_the_function(basic_app: DevHost) -> None:
    seen = basic_app.call("PUT", "/api/echo/5?x=1", body=b"").json()
    assert seen["method"] == "PUT"
    assert seen["url"] == f"{basic_app.base_url}/api/echo/5?x=1"


def test_query_parameters_are_decoded(basic_app: DevHost) -> None:
    seen = basic_app.call("GET", "/api/echo/1?name=J%C3%BCrgen&empty=").json()
    assert seen["params"] == {"name": "Jürgen", "empty": ""}


def test_repeated_query_keys_are_joined_with_a_comma(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/echo/1?tag=a&tag=b").json()["params"] == {"tag": "a,b"}


def test_route_parameters_reach_the_function(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/echo/42").json()["route_params"] == {"id": "42"}


def test_route_constraint_mismatch_is_not_found(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/echo/forty-two").status == 404


def test_catch_all_parameter_gets_the_rest_of_the_path(basic_app: DevHost) -> None:
    seen = basic_app.call("GET", "/api/files/docs/a%20b/c.txt").json()
    assert seen["route_params"] == {"path": "docs/a b/c.txt"}


def test_optional_parameter_may_be_left_out(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/greet").json()["route_params"] == {}
    assert basic_app.call("GET", "/api/greet/ada").json()["route_params"] == {"name": "ada"}


def test_literal_route_wins_over_a_parameter_route(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/items/new").json()["kind"] == "new_item"
    assert basic_app.call("GET", "/api/items/7").json()["kind"] == "item"


def test_request_headers_arrive_lower_cased_and_case_insensitive(basic_app: DevHost) -> None:
    seen = basic_app.call("GET", "/api/echo/1", headers=[("CE-Signature", "sha256=ab")]).json()
    assert seen["headers"]["ce-signature"] == "sha256=ab"


def test_repeated_request_headers_are_joined_with_a_comma(basic_app: DevHost) -> None:
    seen = basic_app.call("GET", "/api/echo/1", headers=[("X-Many", "a"), ("X-Many", "b")]).json()
    assert seen["headers"]["x-many"] == "a,b"


def test_repeated_request_headers_in_different_case_are_one_header(basic_app: DevHost) -> None:
    seen = basic_app.call("GET", "/api/echo/1", headers=[("X-Case", "a"), ("x-case", "b")]).json()
    assert seen["headers"]["x-case"] == "a,b"


def test_request_body_bytes_reach_the_function_unchanged(basic_app: DevHost) -> None:
    body = bytes(range(256))
    seen = basic_app.call("POST", "/api/echo/1", body=body).json()
    assert seen["body"].encode("latin-1") == body


def test_async_function_gets_the_request_too(basic_app: DevHost) -> None:
    seen = basic_app.call("POST", "/api/async/echo?a=1", body=b"hi").json()
    assert (seen["kind"], seen["params"], seen["body"]) == ("async", {"a": "1"}, "hi")


def test_sync_function_runs_in_the_thread_pool(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/echo/1").json()["thread"].startswith("function")


def test_async_function_runs_on_the_event_loop_thread(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/async/echo").json()["thread"] == "MainThread"


def test_blueprint_functions_are_served(basic_app: DevHost) -> None:
    answer = basic_app.call("GET", "/api/from_blueprint")
    assert (answer.status, answer.body) == (200, b"served from a blueprint")


def test_function_without_methods_accepts_any_method(basic_app: DevHost) -> None:
    assert basic_app.call("DELETE", "/api/anything").json()["method"] == "DELETE"


def test_unknown_route_is_not_found(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/no-such-function").status == 404


def test_wrong_method_is_405_with_the_allowed_methods(basic_app: DevHost) -> None:
    answer = basic_app.call("DELETE", "/api/echo/1")
    assert answer.status == 405
    assert answer.header("Allow") == "GET, POST, PUT"


def test_response_status_and_body_come_from_the_function(basic_app: DevHost) -> None:
    answer = basic_app.call("POST", "/api/respond", body=json.dumps({"body": "made", "status": 201}).encode())
    assert (answer.status, answer.body) == (201, b"made")


def test_text_mimetype_gets_the_charset_in_content_type(basic_app: DevHost) -> None:
    spec = {"body": "héllo", "mimetype": "text/html", "charset": "iso-8859-1"}
    answer = basic_app.call("POST", "/api/respond", body=json.dumps(spec).encode())
    assert answer.header("Content-Type") == "text/html; charset=iso-8859-1"
    assert answer.body == "héllo".encode("iso-8859-1")


def test_non_text_mimetype_is_sent_without_charset(basic_app: DevHost) -> None:
    spec = {"body": "{}", "mimetype": "application/json"}
    answer = basic_app.call("POST", "/api/respond", body=json.dumps(spec).encode())
    assert answer.header("Content-Type") == "application/json"


def test_default_content_type_is_utf8_text(basic_app: DevHost) -> None:
    answer = basic_app.call("POST", "/api/respond", body=json.dumps({"body": "x"}).encode())
    assert answer.header("Content-Type") == "text/plain; charset=utf-8"


def test_explicit_content_type_header_wins_over_mimetype(basic_app: DevHost) -> None:
    spec = {"body": "data: 1\n\n", "headers": {"Content-Type": "text/event-stream"}}
    answer = basic_app.call("POST", "/api/respond", body=json.dumps(spec).encode())
    assert answer.header("Content-Type") == "text/event-stream"


def test_response_headers_come_from_the_function(basic_app: DevHost) -> None:
    spec = {"body": "", "headers": {"WebHook-Allowed-Origin": "localhost:8080"}}
    answer = basic_app.call("POST", "/api/respond", body=json.dumps(spec).encode())
    assert answer.header("WebHook-Allowed-Origin") == "localhost:8080"


def test_repeated_set_cookie_headers_are_all_sent(basic_app: DevHost) -> None:
    spec = {"add_headers": [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]]}
    answer = basic_app.call("POST", "/api/respond", body=json.dumps(spec).encode())
    assert answer.all("Set-Cookie") == ["a=1", "b=2"]


def test_status_given_as_text_is_sent_as_a_number(basic_app: DevHost) -> None:
    answer = basic_app.call("POST", "/api/respond", body=json.dumps({"status": "202"}).encode())
    assert answer.status == 202


def test_string_return_value_is_a_200_text_response(basic_app: DevHost) -> None:
    answer = basic_app.call("GET", "/api/plain")
    assert (answer.status, answer.header("Content-Type"), answer.body) == (
        200,
        "text/plain; charset=utf-8",
        b"just a string",
    )


def test_no_return_value_is_204(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/nothing").status == 204


def test_named_output_binding_value_is_the_response(basic_app: DevHost) -> None:
    answer = basic_app.call("GET", "/api/out")
    assert (answer.status, answer.body) == (202, b"set on the output binding")


def test_context_argument_carries_function_name_and_invocation_id(basic_app: DevHost) -> None:
    first = basic_app.call("GET", "/api/context").json()
    second = basic_app.call("GET", "/api/context").json()
    assert first["function_name"] == "with_context"
    assert first["id"] != second["id"]


def test_exception_in_sync_function_is_500_without_details(basic_app: DevHost) -> None:
    answer = basic_app.call("GET", "/api/boom")
    assert answer.status == 500
    assert b"7f3a" not in answer.body


def test_exception_in_sync_function_is_logged_with_traceback(basic_app: DevHost) -> None:
    basic_app.call("GET", "/api/boom")
    log = basic_app.log()
    assert "Traceback (most recent call last)" in log
    assert "ValueError: sync failure detail 7f3a" in log


def test_exception_in_async_function_is_500_and_logged(basic_app: DevHost) -> None:
    answer = basic_app.call("GET", "/api/boom_async")
    assert answer.status == 500
    assert b"9c1e" not in answer.body
    assert "ValueError: async failure detail 9c1e" in basic_app.log()


def test_local_settings_values_reach_the_environment(basic_app: DevHost) -> None:
    seen = basic_app.call("GET", "/api/settings").json()
    assert seen["DEVHOST_FIXTURE_FROM_FILE"] == "from the file"


def test_local_settings_never_override_the_environment(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/settings").json()["DEVHOST_FIXTURE_PRESET"] == "from the environment"


def test_local_settings_numbers_become_text(basic_app: DevHost) -> None:
    assert basic_app.call("GET", "/api/settings").json()["DEVHOST_FIXTURE_NUMBER"] == "42"


def logged_line(host: DevHost, marker: str) -> str:
    """The log line of the request whose query string carries `marker`."""
    wait_until(lambda: marker in host.log(), f"the log line of {marker}")
    return next(line for line in host.log().splitlines() if marker in line)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "INFO devhost: Executed 'Functions.respond' (Succeeded,"),
     (403, "INFO devhost: Executed 'Functions.respond' (Client error,"),
     (503, "WARNING devhost: Executed 'Functions.respond' (Server error,")],
)  # fmt: skip
def test_log_line_outcome_matches_the_status_answered(basic_app: DevHost, status: int, outcome: str) -> None:
    marker = f"outcome-{status}"
    basic_app.call("POST", f"/api/respond?case={marker}", body=json.dumps({"status": status}).encode())
    line = logged_line(basic_app, marker)
    assert outcome in line
    assert line.endswith(f"POST /api/respond?case={marker} -> {status}")


def test_log_line_of_a_function_that_raised_says_failed_with_id_and_duration(basic_app: DevHost) -> None:
    basic_app.call("GET", "/api/boom?case=failed-line")
    line = logged_line(basic_app, "failed-line")
    assert re.search(
        r"ERROR devhost: Executed 'Functions\.boom' \(Failed, Id=[0-9a-f-]{36}, Duration=\d+ms\)", line
    )
    assert line.endswith("GET /api/boom?case=failed-line -> 500")
