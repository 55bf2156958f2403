"""The routes, methods and auth levels the hub configuration and the clients rely on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import function_app

PROJECT = Path(function_app.__file__).resolve().parent


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


def test_eventhandler_takes_options_and_post_anonymously_and_authenticates_events_itself(
    routes: dict[str, tuple[str, set[str], str]],
) -> None:
    assert routes["eventhandler"][1:] == ({"OPTIONS", "POST"}, "ANONYMOUS")


@pytest.mark.parametrize("route", ["negotiate", "messages", "index"])
def test_user_facing_routes_are_anonymous_get(
    route: str, routes: dict[str, tuple[str, set[str], str]]
) -> None:
    assert routes[route][1:] == ({"GET"}, "ANONYMOUS")


def test_function_names_match_routes(routes: dict[str, tuple[str, set[str], str]]) -> None:
    assert {name for name, _, _ in routes.values()} == {"eventhandler", "negotiate", "messages", "index"}


def test_a_missing_chat_page_asset_does_not_stop_the_other_functions_from_indexing(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "function_app.py", tmp_path)
    shutil.copytree(
        PROJECT / "wps_upstream", tmp_path / "wps_upstream", ignore=shutil.ignore_patterns("chat.js")
    )
    script = (
        "import function_app; print(sorted(f.get_function_name() for f in function_app.app.get_functions()))"
    )
    listed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    assert listed.stdout.strip() == "['eventhandler', 'index', 'messages', 'negotiate']"
