"""Microsoft's JS client (`@azure/web-pubsub-client`, from the repo's node_modules) against the emulator."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_harness import EmulatorRun, start_emulator

from devhost.processes import PROJECT_ROOT

SCRIPT = Path(__file__).parent / "js" / "client_scenario.mjs"
ROLES = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    yield from start_emulator(
        tmp_path_factory.mktemp("jsclient"),
        "--hub", "chat", "--upstream", "{upstream}/events/{hub}/{event}",
        "--upstream-retry-delays", "0.05,0.05,0.05",
        name="emulator-jsclient",
    )  # fmt: skip


@pytest.fixture(scope="module")
def scenario(run: EmulatorRun) -> dict[str, Any]:
    """Run the node scenario once; each test checks one part of what it saw."""
    node = shutil.which("node")
    if node is None or not (PROJECT_ROOT / "node_modules" / "@azure" / "web-pubsub-client").exists():
        pytest.fail("node and node_modules/@azure/web-pubsub-client are needed: run `npm ci`")
    args = {
        "urlA": run.emulator.client_url("chat", user_id="js-a", roles=ROLES),
        "urlB": run.emulator.client_url("chat", user_id="js-b", roles=ROLES),
        "dropHookBase": f"{run.emulator.endpoint}/_emulator/hubs/chat/connections",
        "group": "js-room",
    }
    done = subprocess.run(
        [node, str(SCRIPT), json.dumps(args)], capture_output=True, text=True, timeout=90, cwd=PROJECT_ROOT
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"node scenario failed:\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(lines[-1]))


def test_group_messages_reach_the_json_client_with_type_and_sender(scenario: dict[str, Any]) -> None:
    assert scenario["bReceived"] == [
        {"group": "js-room", "dataType": "json", "data": {"from": "a"}, "fromUserId": "js-a"},
        {"group": "js-room", "dataType": "text", "data": "from b", "fromUserId": "js-b"},
    ]


def test_no_echo_is_honoured_for_the_reliable_client(scenario: dict[str, Any]) -> None:
    assert scenario["aReceived"] == ["from b"]


def test_event_reply_reaches_the_sender_as_a_server_message(scenario: dict[str, Any]) -> None:
    assert scenario["echo"] == [{"dataType": "text", "data": "echo me"}]


def test_failing_event_handler_rejects_the_send_with_internal_server_error(scenario: dict[str, Any]) -> None:
    assert scenario["failError"] == "InternalServerError"


def test_dropped_reliable_client_recovers_and_loses_nothing(scenario: dict[str, Any]) -> None:
    assert scenario["dropStatus"] == 204
    assert scenario["afterDrop"] == [f"r{i}" for i in range(5)]
    assert scenario["extra"] == []
    assert scenario["connectedEvents"] == [scenario["connectionId"]]  # recovered, not a new connection


def test_recovery_keeps_the_connection_for_the_upstream(run: EmulatorRun, scenario: dict[str, Any]) -> None:
    conn = scenario["connectionId"]
    events = [r for r in run.upstream.of(conn) if r.event in ("connect", "connected")]
    assert [r.event for r in events] == ["connect", "connected"]
    assert events[1].headers["ce-subprotocol"] == "json.reliable.webpubsub.azure.v1"  # the client's default
    assert all(r.problems == [] for r in run.upstream.of(conn))
