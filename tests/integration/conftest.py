"""The function app invoked in-process with func.HttpRequest, on real Azurite and a recording REST API."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest

from tests.constants import table_connection_string, web_pubsub_connection_string
from tests.events.vectors import EventVector
from tests.integration.recorder import RestRecorder
from wps_upstream.functions.eventhandler import eventhandler
from wps_upstream.functions.history import list_messages
from wps_upstream.functions.negotiate import negotiate
from wps_upstream.functions.presence import presence
from wps_upstream.services import get_services, reset_services


@pytest.fixture
def hung_storage() -> Iterator[str]:
    """HungStorage (a fault-injection fake): a table endpoint that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield table_connection_string(listener.getsockname()[1])
    finally:
        listener.close()


@dataclass
class FunctionApp:
    """Calls the app's HTTP functions like the Functions host would."""

    recorder: RestRecorder

    async def event(self, vector: EventVector) -> func.HttpResponse:
        request = func.HttpRequest(
            vector.method, vector.url, headers=vector.headers, params={}, body=vector.body
        )
        return await eventhandler(request)

    async def negotiate(
        self, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> func.HttpResponse:
        request = func.HttpRequest(
            "GET",
            "http://localhost:7071/api/negotiate",
            headers=dict(headers or {}),
            params=dict(params or {}),
            body=b"",
        )
        return await negotiate(request)

    async def messages(self, user: str | None = "reader", **params: str) -> func.HttpResponse:
        if user is not None:
            params["userId"] = user
        request = func.HttpRequest("GET", "http://localhost:7071/api/messages", params=params, body=b"")
        return await list_messages(request)

    async def history(self, **params: str) -> list[dict[str, Any]]:
        response = await self.messages(**params)
        assert response.status_code == 200, response.get_body()
        return list(json.loads(response.get_body())["messages"])

    async def online(self) -> list[tuple[str, str]]:
        """(connection id, user id) of every live connection recorded."""
        services = await get_services()
        return sorted(
            (c.connection_id, c.user_id)
            for c in await services.presence.connections(hub=services.settings.hub)
        )

    async def presence(self, user: str | None = "reader") -> func.HttpResponse:
        params = {"userId": user} if user is not None else {}
        request = func.HttpRequest("GET", "http://localhost:7071/api/presence", params=params, body=b"")
        return await presence(request)


@pytest.fixture
async def app(
    azurite: Any, rest_recorder: RestRecorder, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FunctionApp]:
    """The app configured for this test: fresh tables, the recorder as the service, local user ids allowed."""
    suffix = uuid.uuid4().hex[:12]
    env = {
        "WebPubSubConnectionString": web_pubsub_connection_string(rest_recorder.endpoint),
        "WebPubSubHub": "chat",
        # The vectors in tests/events come from the Azure service host used in the protocol reference.
        "WebPubSubAllowedOrigins": "xxx.webpubsub.azure.com",
        "AzureWebJobsStorage": azurite.connection_string,
        "NegotiateAllowQueryUserId": "true",
        "MessagesTableName": f"messages{suffix}",
        "PresenceTableName": f"presence{suffix}",
        "DependencyTimeoutSeconds": "5",
        "DependencyRetries": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    monkeypatch.delenv("PresenceBroadcast", raising=False)
    rest_recorder.clear()
    await reset_services()
    yield FunctionApp(rest_recorder)
    await reset_services()
    rest_recorder.clear()
