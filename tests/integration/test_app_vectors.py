"""Every fixed request in tests/events/ through the eventhandler function: the HTTP status it must get."""

from __future__ import annotations

import pytest

from tests.events.vectors import load, names
from tests.integration.conftest import FunctionApp

EXPECTED_STATUS = {
    "preflight": 200,
    "preflight-without-awpsversion": 200,
    "preflight-without-origin": 400,
    "preflight-other-origin": 403,
    "connect": 200,
    "connect-reliable-offered": 200,
    "connect-without-subprotocol": 200,
    "connect-with-state": 200,
    "connect-without-user": 401,
    "connect-invalid-json": 400,
    "connected": 200,
    "disconnected": 200,
    "disconnected-empty-body": 200,
    "message-text": 200,
    "message-json": 200,
    "message-json-true": 200,
    "message-binary": 200,
    "message-without-content-type": 200,
    "message-without-awpsversion": 200,
    "message-with-state": 200,
    "message-xml": 415,
    "message-latin1": 415,
    "message-invalid-utf8": 400,
    "message-invalid-json": 400,
    "message-without-event-id": 400,
    "custom-event": 204,
    "unknown-system-event": 400,
    "other-event-type": 400,
    "group-joined": 400,
    "not-webpubsub": 400,
    "missing-hub": 400,
    "missing-connection-id": 400,
    "missing-origin": 400,
    "other-origin": 403,
    "wrong-hub": 400,
    "hub-other-case": 200,
    "signature-missing": 401,
    "signature-empty": 401,
    "signature-forged": 401,
    "signature-other-connection": 401,
    "signature-uppercase": 200,
    "signature-secondary": 200,
    "signature-base64-key": 401,
}


def test_every_vector_has_an_expected_status() -> None:
    assert sorted(EXPECTED_STATUS) == names()


@pytest.mark.parametrize(("name", "status"), sorted(EXPECTED_STATUS.items()))
async def test_vector_gets_its_status(app: FunctionApp, name: str, status: int) -> None:
    response = await app.event(load(name))
    assert response.status_code == status, response.get_body()
    if status >= 400:
        assert response.get_body(), "a refusal says what was wrong"
