"""Telemetry: configured only when Application Insights is, never twice, and every span and log record of
an event under the invocation that caused it (shown with in-memory exporters, in a child process)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from devhost.processes import free_port
from tests.conftest import Azurite
from tests.constants import web_pubsub_connection_string
from tests.events.vectors import ORIGIN
from tests.integration.recorder import RestRecorder
from tests.keyless.fresh_process import PROJECT, run_scenario
from wps_upstream.telemetry import configure_telemetry, telemetry_owner

# Application Insights that nobody answers: the in-memory exporters are what the test reads.
UNANSWERED_INGESTION = f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:{free_port()}/"


@pytest.mark.parametrize(
    ("env", "owner"),
    [
        ({}, "off"),
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": UNANSWERED_INGESTION}, "app"),
        (
            {
                "APPLICATIONINSIGHTS_CONNECTION_STRING": UNANSWERED_INGESTION,
                "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
            },
            "worker",
        ),
    ],
    ids=["no-connection-string", "app", "worker"],
)
def test_telemetry_is_sent_by_the_worker_when_it_is_set_up_for_it_else_by_the_app(
    env: dict[str, str], owner: str
) -> None:
    assert telemetry_owner(env) == owner


def test_where_the_worker_sends_telemetry_the_app_configures_nothing() -> None:
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "x",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
    }
    assert configure_telemetry(env) == "worker"


@pytest.fixture(scope="module")
def one_message_traced(azurite: Azurite, rest_recorder: RestRecorder) -> dict[str, Any]:
    """What tests/keyless/telemetry_scenario.py saw: a stored message, then a forged one, each invoked.

    The tables exist beforehand, as in a running deployment (on a missing table the first transaction
    would be sent twice: refused, then again after creating the table)."""
    with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        for table in ("telemetrymessages", "telemetrypresence"):
            service.create_table_if_not_exists(table)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(PROJECT),
        "WebPubSubConnectionString": web_pubsub_connection_string(rest_recorder.endpoint),
        "WebPubSubAllowedOrigins": ORIGIN,
        "AzureWebJobsStorage": azurite.connection_string,
        "MessagesTableName": "telemetrymessages",
        "PresenceTableName": "telemetrypresence",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": UNANSWERED_INGESTION,
    }
    return run_scenario(PROJECT / "tests" / "keyless" / "telemetry_scenario.py", env)


def descendants(spans: list[dict[str, Any]], root: dict[str, Any]) -> list[dict[str, Any]]:
    found, frontier = [], [root["id"]]
    while frontier:
        children = [span for span in spans if span["parent"] in frontier]
        found += children
        frontier = [span["id"] for span in children]
    return found


# The operations of a message event, as the SDKs name their spans (the REST client's is a mixin's method).
TABLE_TRANSACTION = "TableClient.submit_transaction"
REST_BROADCAST = ".send_to_all"


def named(spans: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    return [span for span in spans if span["name"].endswith(suffix)]


def invocation(traced: dict[str, Any], name: str) -> dict[str, Any]:
    [span] = [span for span in traced["spans"] if span["name"] == name]
    return span


def test_the_app_configures_telemetry_when_no_worker_does(one_message_traced: dict[str, Any]) -> None:
    assert one_message_traced["owner"] == "app"
    assert one_message_traced["statuses"] == [200, 401]


def test_the_table_transaction_and_the_rest_call_of_a_message_are_children_of_its_invocation(
    one_message_traced: dict[str, Any],
) -> None:
    spans = one_message_traced["spans"]
    root = invocation(one_message_traced, "invocation message-text telemetry-conn")
    under_root = descendants(spans, root)
    assert len(named(under_root, TABLE_TRANSACTION)) == 1
    assert len(named(under_root, REST_BROADCAST)) == 1
    assert {span["trace"] for span in descendants(spans, root)} == {root["trace"]}


def test_each_dependency_call_has_its_http_client_span(one_message_traced: dict[str, Any]) -> None:
    spans = one_message_traced["spans"]
    root = invocation(one_message_traced, "invocation message-text telemetry-conn")
    under_root = descendants(spans, root)
    for operation in (TABLE_TRANSACTION, REST_BROADCAST):
        [span] = named(under_root, operation)
        assert [child["kind"] for child in spans if child["parent"] == span["id"]] == ["CLIENT"]


def test_the_apps_log_records_carry_the_invocation_that_caused_them(
    one_message_traced: dict[str, Any],
) -> None:
    root = invocation(one_message_traced, "invocation message-text forged-conn")
    [refusal] = [log for log in one_message_traced["logs"] if "refused with 401" in log["body"]]
    assert refusal["trace"] == root["trace"]
    assert refusal["span"] == root["id"]
