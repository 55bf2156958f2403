"""The routes, methods and auth levels the hub configuration and the clients rely on."""

from __future__ import annotations

import pytest

import function_app


@pytest.fixture(scope="module")
def routes() -> dict[str, tuple[str, set[str], str]]:
    # get_functions() may be called only once per FunctionApp (it caches its bindings).
    table = {}
    for function in function_app.app.get_functions():
        trigger = function.get_trigger()
        methods = {str(getattr(method, "value", method)) for method in trigger.methods or []}
        table[trigger.route] = (function.get_function_name(), methods, str(trigger.auth_level.name))
    return table


def test_the_app_serves_exactly_the_contract_routes(routes: dict[str, tuple[str, set[str], str]]) -> None:
    assert set(routes) == {"eventhandler", "negotiate", "messages", "index"}


def test_eventhandler_takes_options_and_post_with_a_function_key(
    routes: dict[str, tuple[str, set[str], str]],
) -> None:
    assert routes["eventhandler"][1:] == ({"OPTIONS", "POST"}, "FUNCTION")


@pytest.mark.parametrize("route", ["negotiate", "messages", "index"])
def test_user_facing_routes_are_anonymous_get(
    route: str, routes: dict[str, tuple[str, set[str], str]]
) -> None:
    assert routes[route][1:] == ({"GET"}, "ANONYMOUS")


def test_function_names_match_routes(routes: dict[str, tuple[str, set[str], str]]) -> None:
    assert {name for name, _, _ in routes.values()} == {"eventhandler", "negotiate", "messages", "index"}
