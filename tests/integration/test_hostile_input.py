"""Input an attacker would send, through the real functions on Azurite: each case hurt the app once.

Every test here is a regression test for one way hostile or broken input used to get a 5xx, poison the
history for everyone, or be acknowledged wrongly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from typing import Any

import pytest
from azure.data.tables.aio import TableClient

from tests.events.vectors import EventVector, load
from tests.integration.conftest import FunctionApp
from wps_upstream.payload import MAX_JSON_DEPTH, MAX_MESSAGE_BYTES
from wps_upstream.services import get_services, reset_services
from wps_upstream.store.pages import MAX_PAGE_BYTES
from wps_upstream.store.tables import deadline_s


def connection() -> str:
    return f"conn-{uuid.uuid4().hex[:10]}"


def json_message(body: bytes, conn: str | None = None, event_id: str | None = None) -> EventVector:
    vector = load("message-json").for_connection(conn or connection()).with_body(body)
    return vector.with_headers(ce_id=event_id or uuid.uuid4().hex)


def strict_json(raw: bytes) -> Any:
    """Parse as a browser would: NaN, Infinity and lone surrogates are refused."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    value = json.loads(raw, parse_constant=refuse)
    raw.decode("utf-8")  # lone surrogates cannot be valid UTF-8
    return value


async def history_answers_strict_json(app: FunctionApp) -> list[dict[str, Any]]:
    response = await app.messages(limit="200")
    assert response.status_code == 200, response.get_body()
    return list(strict_json(response.get_body())["messages"])


# --- strict JSON in, strict JSON out --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'"\\ud800"', b"lone surrogate"),
        (b'{"text":"a\\udfffb"}', b"lone surrogate"),
        (b'{"n":1e400}', b"1e400"),
        (b"[-1e400]", b"-1e400"),
        (b'{"n":1e-400}', b"1e-400"),
        (b"NaN", b"not valid JSON"),
    ],
)
async def test_poison_json_is_refused_and_history_stays_readable(
    app: FunctionApp, body: bytes, reason: bytes
) -> None:
    response = await app.event(json_message(body))
    assert response.status_code == 400
    assert reason in response.get_body()
    assert await history_answers_strict_json(app) == []
    assert app.recorder.sends() == []


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 990, 1_000, 100_000])
async def test_json_nested_too_deep_is_a_400_never_a_recursion_error(app: FunctionApp, depth: int) -> None:
    response = await app.event(json_message(b"[" * depth + b"]" * depth))
    assert response.status_code == 400
    assert b"deeper than 64 levels" in response.get_body()


async def test_json_nested_to_the_limit_is_stored_and_broadcast(app: FunctionApp) -> None:
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    response = await app.event(json_message(nested))
    assert response.status_code == 200
    assert json.loads(app.recorder.sends()[0].body)["data"] == json.loads(nested)


async def test_deeply_nested_connect_body_is_a_400(app: FunctionApp) -> None:
    vector = (
        load("connect")
        .for_connection(connection())
        .with_body(b'{"claims":' + b"[" * 5000 + b"]" * 5000 + b"}")
    )
    response = await app.event(vector)
    assert response.status_code == 400


async def test_deeply_nested_connection_state_is_ignored_not_a_500(app: FunctionApp) -> None:
    state = base64.b64encode(b"[" * 5000 + b"]" * 5000).decode()
    response = await app.event(
        load("connect").for_connection(connection()).with_headers(ce_connectionState=state)
    )
    assert response.status_code == 200


async def test_a_stored_row_that_cannot_be_read_is_left_out_of_history_and_logged_once(
    app: FunctionApp, azurite: Any, caplog: pytest.LogCaptureFixture
) -> None:
    good = await app.event(json_message(b'{"ok":true}'))
    assert good.status_code == 200
    services = await get_services()
    async with TableClient.from_connection_string(
        azurite.connection_string, services.settings.messages_table
    ) as t:
        # Fault injection: a row written around the app, as an older version (or a bug) could have.
        rows = [r async for r in t.list_entities() if r["RowKey"].startswith("m")]
        row = rows[0]
        poison = dict(row) | {"RowKey": "m0" + row["RowKey"][2:], "d00": b'{"n":1e400}', "size": 11}
        await t.create_entity(poison)
    with caplog.at_level(logging.ERROR):
        first = await history_answers_strict_json(app)
        second = await history_answers_strict_json(app)
    assert [m["data"] for m in first] == [m["data"] for m in second] == [{"ok": True}]
    assert caplog.text.count(poison["RowKey"]) == 1


# --- redelivery means the same event --------------------------------------------------------------------


async def test_a_forged_event_reusing_a_stored_event_id_is_refused_and_not_broadcast(
    app: FunctionApp, caplog: pytest.LogCaptureFixture
) -> None:
    conn = connection()
    real = await app.event(json_message(b'{"text":"the real one"}', conn, "ev-7"))
    assert real.status_code == 200
    app.recorder.clear()
    with caplog.at_level(logging.WARNING):
        forged = await app.event(json_message(b'{"text":"forged"}', conn, "ev-7"))
    assert forged.status_code == 409
    assert app.recorder.sends() == []
    assert "possible replay" in caplog.text and "sha256=" not in caplog.text
    assert [m["data"] for m in await app.history()] == [{"text": "the real one"}]


async def test_a_true_redelivery_still_gets_the_same_answer_and_broadcast(app: FunctionApp) -> None:
    conn = connection()
    first = await app.event(json_message(b'{"text":"hi"}', conn, "ev-8"))
    again = await app.event(json_message(b'{"text":"hi"}', conn, "ev-8"))
    assert (again.status_code, again.get_body()) == (200, first.get_body())
    assert len(app.recorder.sends()) == 2


# --- client mistakes are 4xx, misconfiguration names the setting ---------------------------------------


async def test_overlong_connection_id_is_a_400_naming_it(app: FunctionApp) -> None:
    response = await app.event(load("connected").for_connection("c" * 600))
    assert response.status_code == 400
    assert b"ce-connectionId" in response.get_body()


async def test_overlong_user_id_on_a_message_is_a_400(app: FunctionApp) -> None:
    response = await app.event(json_message(b"1").with_headers(ce_userId="u" * 40_000))
    assert response.status_code == 400
    assert b"longer than 128" in response.get_body()


async def test_look_alike_user_id_on_an_event_is_a_400(app: FunctionApp) -> None:
    response = await app.event(
        load("connect").for_connection(connection()).with_headers(ce_userId="a\u202eevil")
    )
    assert response.status_code == 400


@pytest.mark.parametrize("user_id", ["a\u202eevil", "ad\u200bmin", " admin ", "x\u2028y"])
async def test_look_alike_user_ids_are_refused_by_negotiate(app: FunctionApp, user_id: str) -> None:
    response = await app.negotiate({"userId": user_id})
    assert response.status_code == 400


async def test_negotiate_normalises_user_ids_to_nfc(app: FunctionApp) -> None:
    response = await app.negotiate({"userId": "Zoe\u0301"})
    assert json.loads(response.get_body())["userId"] == "Zo\u00e9"


async def test_non_ascii_digit_limit_is_a_400(app: FunctionApp) -> None:
    response = await app.messages(limit="²")
    assert response.status_code == 400
    assert b"limit" in response.get_body()


async def test_reserved_table_name_is_the_configuration_error_naming_it(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MessagesTableName", "tables")
    await reset_services()
    response = await app.event(json_message(b"1"))
    assert response.status_code == 500
    assert b"MessagesTableName" in response.get_body()


async def test_oversized_body_is_refused_before_it_is_decoded(app: FunctionApp) -> None:
    # Not JSON at all: a size check that ran after decoding would answer 400 instead.
    response = await app.event(json_message(b"{" * (MAX_MESSAGE_BYTES + 1)))
    assert response.status_code == 413
    assert str(MAX_MESSAGE_BYTES).encode() in response.get_body()


# --- bounded waits ---------------------------------------------------------------------------------------


async def test_with_storage_hung_every_concurrent_event_is_a_503_within_one_deadline(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch, hung_storage: str
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", hung_storage)
    monkeypatch.setenv("DependencyTimeoutSeconds", "1")
    monkeypatch.setenv("DependencyRetries", "1")
    await reset_services()
    bound = deadline_s(1, 1)

    async def timed(vector: EventVector) -> tuple[int, float]:
        started = time.monotonic()
        response = await app.event(vector)
        return response.status_code, time.monotonic() - started

    results = await asyncio.gather(*(timed(json_message(b"1")) for _ in range(10)))
    assert {status for status, _ in results} == {503}
    # Before, the tenth waited behind nine table creations: about ten deadlines.
    assert max(elapsed for _, elapsed in results) < bound + 1.0


# --- bounded pages ---------------------------------------------------------------------------------------


async def test_a_history_page_stops_at_the_byte_budget_and_continues_with_next(app: FunctionApp) -> None:
    big = b'"' + b"x" * 900_000 + b'"'
    conn = connection()
    for index in range(6):
        response = await app.event(json_message(big, conn, f"big-{index}"))
        assert response.status_code == 200
    first = await app.messages(limit="40")
    page = json.loads(first.get_body())
    assert 1 <= len(page["messages"]) <= MAX_PAGE_BYTES // 900_000
    assert page["next"] is not None
    seen = len(page["messages"])
    while page["next"]:
        page = json.loads((await app.messages(limit="40", before=page["next"])).get_body())
        seen += len(page["messages"])
    assert seen == 6


async def test_one_message_larger_than_the_budget_is_still_a_page(app: FunctionApp) -> None:
    # Binary data is listed as base64: one such message is over the budget once encoded, never cut.
    vector = load("message-binary").for_connection(connection()).with_body(bytes(MAX_MESSAGE_BYTES))
    assert (await app.event(vector)).status_code == 200
    assert len(await app.history()) == 1


# --- flood control ---------------------------------------------------------------------------------------


async def test_a_connection_over_the_rate_limit_gets_429_and_nothing_more_is_stored(
    app: FunctionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MessageRateLimit", "2")  # bursts of 4
    await reset_services()
    conn = connection()
    statuses = [(await app.event(json_message(b"1", conn))).status_code for _ in range(6)]
    assert statuses[:4] == [200] * 4
    assert 429 in statuses[4:]
    refused = await app.event(json_message(b"2", conn))
    if refused.status_code == 429:
        assert b"at most 2 per second" in refused.get_body()
    assert len(await app.history()) == statuses.count(200) + (refused.status_code == 200)


async def test_the_rate_limit_is_per_connection(app: FunctionApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MessageRateLimit", "1")
    await reset_services()
    conn = connection()
    for _ in range(3):
        await app.event(json_message(b"1", conn))
    assert (await app.event(json_message(b"1"))).status_code == 200
