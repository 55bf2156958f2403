"""Property-based tests: generated events against the real webhook on Azurite (Hypothesis).

Hypothesis draws header sets, event types, content types and bodies (JSON of any shape, text, binary,
invalid UTF-8, huge, deeply nested) and sends each one to the event handler in-process. Properties:

- no unhandled exception and no 5xx (storage is up);
- with storage down, nothing but 4xx and 503;
- every message answered 200 is in history exactly once, under the id it was answered with;
- history always answers 200 with strict JSON.

The example counts keep each test well under a minute; `FUZZ_EXAMPLES` raises them for a longer hunt.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.processes import free_port, table_connection_string
from tests.events.vectors import DEFAULT_KEY, EventVector, load, signature
from tests.integration.conftest import FunctionApp
from wps_upstream.payload import MAX_MESSAGE_BYTES
from wps_upstream.services import reset_services

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

EVENT_TYPES = {
    "connect": "azure.webpubsub.sys.connect",
    "connected": "azure.webpubsub.sys.connected",
    "disconnected": "azure.webpubsub.sys.disconnected",
    "message": "azure.webpubsub.user.message",
    "custom": "azure.webpubsub.user.custom",
}

# --- strategies -----------------------------------------------------------------------------------------

any_text = st.text(st.characters(codec=None), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def nested_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([1, 32, 63, 64, 65, 200, 999, 1_000, 5_000]))
    opener = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return (opener[0] * depth + "0" + opener[1] * depth).encode()


def dumped(value: Any) -> bytes:
    """JSON text as Python writes it: NaN, Infinity and lone surrogates included, as a client might send."""
    return json.dumps(value, ensure_ascii=isinstance(value, list)).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    json_values.map(dumped),
    st.text(max_size=200).map(lambda text: text.encode("utf-8")),
    st.binary(max_size=200),
    st.sampled_from([b'"\\ud800"', b'{"n":1e400}', b"[1e-400]", b"NaN", b"\xff\xfe", b"", b"{", b"\xc3("]),
    nested_json(),
    st.sampled_from([b"x" * (MAX_MESSAGE_BYTES + 1), b"[" * MAX_MESSAGE_BYTES]),
)
content_types = st.sampled_from(
    [
        None,
        "text/plain",
        "text/plain; charset=utf-8",
        "text/plain; charset=latin-1",
        "application/json",
        'application/json; charset="UTF-8"',
        "application/octet-stream",
        "application/xml",
        "",
        ";;",
        "APPLICATION/JSON",
    ]
)


@dataclass(frozen=True)
class DrawnEvent:
    kind: str
    vector: EventVector

    @property
    def is_message(self) -> bool:
        return self.kind == "message"


@st.composite
def events(draw: st.DrawFn) -> DrawnEvent:
    kind = draw(st.sampled_from([*EVENT_TYPES, "unknown", "group"]))
    connection = draw(st.sampled_from(["conn-a", "conn-b", "conn-c"]) | any_text)
    vector = load("message-text").with_body(draw(bodies))
    ce_type = {"unknown": draw(any_text), "group": "azure.webpubsub.gp.joined"}.get(
        kind, EVENT_TYPES.get(kind)
    )
    headers: dict[str, str | None] = {
        "ce-type": ce_type,
        "ce-connectionId": connection,
        "ce-id": draw(st.sampled_from(["1", "2", "3"]) | any_text),  # small pool: redeliveries happen
        "ce-userId": draw(st.sampled_from(["ann", "bob", "Zoë"]) | any_text | st.none()),
        "ce-signature": draw(
            st.sampled_from(["valid"] * 6 + ["forged", "missing"]).map(
                lambda how: {"valid": _safe_signature(connection), "forged": "sha256=00", "missing": None}[
                    how
                ]
            )
        ),
        "WebHook-Request-Origin": draw(
            st.sampled_from(["xxx.webpubsub.azure.com"] * 6 + ["evil.example", ""])
        ),
        "Content-Type": draw(content_types),
        "ce-connectionState": draw(st.none() | st.sampled_from(["e30=", "!!", "W1tbXV1d"])),
    }
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["ce-hub", "ce-type", "ce-connectionId"]))] = None  # drop one
    return DrawnEvent(kind, _with_headers(vector, headers))


def _safe_signature(connection: str) -> str:
    try:
        return signature(connection, DEFAULT_KEY)
    except UnicodeEncodeError:  # a lone surrogate cannot be signed; the header is then forged
        return "sha256=00"


def _with_headers(vector: EventVector, headers: dict[str, str | None]) -> EventVector:
    changed = dict(vector.headers)
    for name, value in headers.items():
        for existing in [key for key in changed if key.lower() == name.lower()]:
            del changed[existing]
        if value is not None:
            changed[name] = value
    return EventVector(vector.name, vector.description, vector.method, vector.url, changed, vector.body)


# --- the properties -------------------------------------------------------------------------------------


def strict_json(raw: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


@dataclass
class Ledger:
    """The messages the webhook acknowledged with 200, by id."""

    acknowledged: set[str] = field(default_factory=set)


async def history_ids(app: FunctionApp) -> list[str]:
    """Every id in history, through all pages; each page must be strict JSON answered with 200."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "200"} | ({"before": cursor} if cursor else {})
        response = await app.messages(**params)
        assert response.status_code == 200, response.get_body()
        page = strict_json(response.get_body())
        ids += [message["id"] for message in page["messages"]]
        cursor = page["next"]
        if cursor is None:
            return ids


@pytest.fixture
def fuzz_app(app: FunctionApp, monkeypatch: pytest.MonkeyPatch) -> FunctionApp:
    monkeypatch.setenv("MessageRateLimit", "0")  # the fuzzer sends faster than any person
    return app


@FUZZ
@given(drawn=events())
async def test_generated_events_never_get_a_5xx_and_history_keeps_every_acknowledged_message(
    fuzz_app: FunctionApp, drawn: DrawnEvent
) -> None:
    response = await fuzz_app.event(drawn.vector)
    assert response.status_code < 500, (response.status_code, response.get_body())
    if drawn.is_message and response.status_code == 200:
        message_id = strict_json(response.get_body())["id"]
        assert (await history_ids(fuzz_app)).count(message_id) == 1
    else:
        await history_ids(fuzz_app)


@FUZZ
@given(drawn=st.lists(events(), min_size=1, max_size=6))
async def test_every_message_acknowledged_in_a_sequence_is_listed_exactly_once(
    fuzz_app: FunctionApp, drawn: list[DrawnEvent]
) -> None:
    acknowledged = set()
    for event in drawn:
        response = await fuzz_app.event(event.vector)
        assert response.status_code < 500
        if event.is_message and response.status_code == 200:
            acknowledged.add(strict_json(response.get_body())["id"])
    listed = await history_ids(fuzz_app)
    assert all(listed.count(message_id) == 1 for message_id in acknowledged)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 6))
@given(drawn=events())
async def test_with_storage_down_answers_are_4xx_or_503_only(
    fuzz_app: FunctionApp, monkeypatch: pytest.MonkeyPatch, drawn: DrawnEvent
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", table_connection_string(free_port()))  # nothing listens there
    monkeypatch.setenv("DependencyRetries", "0")
    await reset_services()
    response = await fuzz_app.event(drawn.vector)
    assert response.status_code < 500 or response.status_code == 503, response.get_body()


@settings(FUZZ, max_examples=max(10, EXAMPLES // 4))
@given(user=st.text(string.printable + "é😀\u202e\u200b\u2028", max_size=150), limit=any_text)
async def test_history_and_negotiate_refuse_bad_users_and_limits_with_4xx(
    fuzz_app: FunctionApp, user: str, limit: str
) -> None:
    for response in (
        await fuzz_app.negotiate({"userId": user}),
        await fuzz_app.messages(user=user, limit=limit),
    ):
        assert response.status_code in (200, 400, 401), response.get_body()
        if response.status_code == 200:
            strict_json(response.get_body())
