"""Microsoft's worker runtime indexes function_app.py into exactly the functions the deployment relies on.

The indexer (`azure_functions_runtime.loader.index_function_app`) is the code the Python worker runs in
Azure to find the app's functions; it runs here on Python 3.13 in a subprocess (conftest.indexed_app).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Trigger:
    """A function's trigger as the host receives it."""

    type: str
    route: str | None = None
    methods: frozenset[str] = frozenset()
    auth_level: str | None = None
    schedule: str | None = None


def http(route: str, methods: set[str], auth_level: str) -> Trigger:
    return Trigger("httpTrigger", route, frozenset(methods), auth_level)


# Every function the app registers, by function name. Add a row when the app gains a function.
EXPECTED: dict[str, Trigger] = {
    # Anonymous: the app authenticates every event itself (Entra token and/or signature); no ?code=.
    "eventhandler": http("eventhandler", {"OPTIONS", "POST"}, "ANONYMOUS"),
    "negotiate": http("negotiate", {"GET"}, "ANONYMOUS"),
    "messages": http("messages", {"GET"}, "ANONYMOUS"),
    "presence": http("presence", {"GET"}, "ANONYMOUS"),
    "index": http("index", {"GET"}, "ANONYMOUS"),
    # PresenceReconcileSchedule is not set here: the default schedule, every five minutes.
    "reconcile_presence": Trigger("timerTrigger", schedule="0 */5 * * * *"),
}


def trigger_of(function: dict[str, Any]) -> Trigger:
    triggers = [binding for binding in function["bindings"] if binding["type"].endswith("Trigger")]
    assert len(triggers) == 1, f"{function['name']} has {len(triggers)} triggers"
    binding = triggers[0]
    return Trigger(
        type=binding["type"],
        route=binding.get("route"),
        methods=frozenset(method.upper() for method in binding.get("methods") or []),
        auth_level=binding.get("authLevel"),
        schedule=binding.get("schedule"),
    )


@pytest.fixture(scope="module")
def indexed(indexed_app: dict[str, Any]) -> dict[str, Trigger]:
    return {function["name"]: trigger_of(function) for function in indexed_app["functions"]}


def test_indexer_runs_on_the_python_it_supports(indexed_app: dict[str, Any]) -> None:
    assert indexed_app["python"].startswith("3.13."), indexed_app["python"]


def test_indexer_finds_exactly_the_expected_functions(indexed: dict[str, Trigger]) -> None:
    assert sorted(indexed) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_function_has_its_expected_trigger(name: str, indexed: dict[str, Trigger]) -> None:
    assert indexed.get(name) == EXPECTED[name]


def test_http_functions_answer_through_the_http_output_binding(indexed_app: dict[str, Any]) -> None:
    for function in indexed_app["functions"]:
        types = {binding["type"] for binding in function["bindings"]}
        if "httpTrigger" in types:
            assert "http" in types, f"{function['name']} has no http output binding"
