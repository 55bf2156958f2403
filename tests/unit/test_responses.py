"""EventResponse -> func.HttpResponse, and app errors -> HTTP in one place."""

from __future__ import annotations

import logging

import pytest

from wps_upstream.cloudevents import EventResponse
from wps_upstream.errors import BadRequest, DependencyFailed
from wps_upstream.responses import answer, error_response, http_response, json_response


def test_content_type_and_extra_headers_are_passed_exactly() -> None:
    response = http_response(
        EventResponse(200, b"{}", "application/json; charset=utf-8", (("ce-connectionState", "e30="),))
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["ce-connectionState"] == "e30="
    assert response.get_body() == b"{}"


def test_json_response_is_compact_utf8() -> None:
    response = json_response({"name": "Zoë"}, status=201)
    assert (response.status_code, response.get_body()) == (201, '{"name":"Zoë"}'.encode())


def test_app_error_becomes_its_status_with_the_message_as_text() -> None:
    response = error_response(BadRequest("limit must be a number"))
    assert (response.status_code, response.get_body()) == (400, b"limit must be a number")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_answer_maps_app_errors() -> None:
    async def refuse() -> None:
        raise BadRequest("nope")

    response = await answer(refuse, what="test")  # type: ignore[arg-type]
    assert (response.status_code, response.get_body()) == (400, b"nope")


async def test_answer_logs_dependency_failures_with_what_failed(caplog: pytest.LogCaptureFixture) -> None:
    async def fail() -> None:
        raise DependencyFailed("storage down")

    with caplog.at_level(logging.ERROR):
        response = await answer(fail, what="POST eventhandler event 7")  # type: ignore[arg-type]
    assert response.status_code == 503
    assert "event 7" in caplog.text


async def test_unexpected_errors_are_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    async def crash() -> None:
        raise KeyError("secret internals")

    response = await answer(crash, what="test")  # type: ignore[arg-type]
    assert response.status_code == 500
    assert b"secret" not in response.get_body()
    assert "secret internals" in caplog.text
