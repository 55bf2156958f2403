"""The functions, routes, methods and auth levels the hub configuration and the clients rely on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import function_app

PROJECT = Path(function_app.__file__).resolve().parent


@pytest.fixture(scope="module")
def functions() -> dict[str, dict[str, object]]:
    # get_functions() may be called only once per FunctionApp (it caches its bindings).
    return {
        function.get_function_name(): function.get_trigger().get_dict_repr()
        for function in function_app.app.get_functions()
    }


@pytest.fixture(scope="module")
def routes(functions: dict[str, dict[str, object]]) -> dict[str, tuple[str, set[str], str]]:
    table = {}
    for name, trigger in functions.items():
        if trigger["type"] == "httpTrigger":
            methods = {str(method) for method in trigger.get("methods") or []}
            table[str(trigger["route"])] = (name, methods, str(trigger["authLevel"]))
    return table


def test_the_app_serves_exactly_the_contract_routes(routes: dict[str, tuple[str, set[str], str]]) -> None:
    assert set(routes) == {"eventhandler", "negotiate", "messages", "presence", "index"}


def test_eventhandler_takes_options_and_post_anonymously_and_authenticates_events_itself(
    routes: dict[str, tuple[str, set[str], str]],
) -> None:
    assert routes["eventhandler"][1:] == ({"OPTIONS", "POST"}, "ANONYMOUS")


@pytest.mark.parametrize("route", ["negotiate", "messages", "presence", "index"])
def test_user_facing_routes_are_anonymous_get(
    route: str, routes: dict[str, tuple[str, set[str], str]]
) -> None:
    assert routes[route][1:] == ({"GET"}, "ANONYMOUS")


def test_function_names_match_routes(routes: dict[str, tuple[str, set[str], str]]) -> None:
    assert {name for name, _, _ in routes.values()} == set(routes)


def test_presence_is_reconciled_by_a_timer_every_five_minutes_by_default(
    functions: dict[str, dict[str, object]],
) -> None:
    trigger = functions["reconcile_presence"]
    assert (trigger["type"], trigger["schedule"], trigger["runOnStartup"]) == (
        "timerTrigger",
        "0 */5 * * * *",
        False,
    )


def test_the_reconciliation_schedule_is_a_setting(tmp_path: Path) -> None:
    script = (
        "import function_app; print([f.get_trigger().get_dict_repr()['schedule'] "
        "for f in function_app.app.get_functions() if f.get_function_name() == 'reconcile_presence'])"
    )
    listed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PresenceReconcileSchedule": "30 * * * * *"},
    )
    assert listed.stdout.strip() == "['30 * * * * *']"


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
    assert (
        listed.stdout.strip()
        == "['eventhandler', 'index', 'messages', 'negotiate', 'presence', 'reconcile_presence']"
    )
