"""EventResponse -> func.HttpResponse, and app errors -> HTTP answers, mapped once for every route."""

from __future__ import annotations

import logging
from typing import Any

import azure.functions as func
import pytest

from wps_upstream import http
from wps_upstream.cloudevents import EventResponse
from wps_upstream.errors import BadRequest, DependencyFailed
from wps_upstream.http import error_response, handled, http_response, json_response

REQUEST = func.HttpRequest("GET", "http://localhost/api/test", body=b"")


@pytest.fixture
def no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in for the composition root: these routes never touch their services."""

    async def services() -> Any:
        return None

    monkeypatch.setattr(http, "get_services", services)


def route_raising(error: Exception) -> http.HttpFunction:
    @handled(lambda req: "POST eventhandler event 7")
    async def route(req: func.HttpRequest, services: Any) -> func.HttpResponse:
        raise error

    return route


def test_content_type_and_extra_headers_are_passed_exactly() -> None:
    response = http_response(
        EventResponse(200, b"{}", "application/json; charset=utf-8", (("ce-connectionState", "e30="),))
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["ce-connectionState"] == "e30="
    assert response.get_body() == b"{}"


def test_json_response_sends_the_json_text_as_utf8() -> None:
    response = json_response('{"name":"Zoë"}', status=201, headers={"Cache-Control": "no-store"})
    assert (response.status_code, response.get_body()) == (201, '{"name":"Zoë"}'.encode())
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"


def test_app_error_becomes_its_status_with_the_message_as_text() -> None:
    response = error_response(BadRequest("limit must be a number"), "test")
    assert (response.status_code, response.get_body()) == (400, b"limit must be a number")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.usefixtures("no_services")
async def test_handled_routes_answer_app_errors_with_their_status() -> None:
    response = await route_raising(BadRequest("nope"))(REQUEST)
    assert (response.status_code, response.get_body()) == (400, b"nope")


@pytest.mark.usefixtures("no_services")
async def test_handled_routes_log_dependency_failures_with_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await route_raising(DependencyFailed("storage down"))(REQUEST)
    assert response.status_code == 503
    assert "event 7" in caplog.text


@pytest.mark.usefixtures("no_services")
async def test_unexpected_errors_are_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    response = await route_raising(KeyError("secret internals"))(REQUEST)
    assert response.status_code == 500
    assert b"secret" not in response.get_body()
    assert "secret internals" in caplog.text


def test_handled_routes_take_only_the_request_as_the_indexer_requires() -> None:
    import inspect

    assert list(inspect.signature(route_raising(BadRequest("x"))).parameters) == ["req"]
