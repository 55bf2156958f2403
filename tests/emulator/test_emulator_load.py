"""Load: 1,000 concurrent connections on one emulator process; a broadcast reaches every one of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient as AsyncServiceClient
from emulator_harness import JSON, EmulatorRun, start_emulator

CONNECTIONS = 1000
HUB = "load"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorRun]:
    yield from start_emulator(tmp_path_factory.mktemp("load"), "--log-level", "WARNING", name="emulator-load")


@pytest.fixture
async def sockets(run: EmulatorRun) -> AsyncIterator[list[aiohttp.ClientWebSocketResponse]]:
    """1,000 JSON-protocol connections, each past its `connected` message."""
    service = run.emulator.service(HUB)
    url = service.get_client_access_token(user_id="load-user")["url"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        opened: list[aiohttp.ClientWebSocketResponse] = []

        async def open_one() -> None:
            ws = await session.ws_connect(url, protocols=(JSON,))
            opened.append(ws)
            assert (await ws.receive_json(timeout=30))["event"] == "connected"

        try:
            for start in range(0, CONNECTIONS, 200):  # in waves, to keep the accept backlog reasonable
                await asyncio.gather(*(open_one() for _ in range(start, min(start + 200, CONNECTIONS))))
            yield opened
        finally:
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)


async def test_broadcast_reaches_all_1000_connections(
    run: EmulatorRun, sockets: list[aiohttp.ClientWebSocketResponse]
) -> None:
    assert len(sockets) == CONNECTIONS
    async with AsyncServiceClient.from_connection_string(run.emulator.connection_string, hub=HUB) as service:
        await service.send_to_all({"n": 1})
        await service.send_to_all("second", content_type="text/plain")
    firsts = await asyncio.gather(*(ws.receive_str(timeout=30) for ws in sockets))
    seconds = await asyncio.gather(*(ws.receive_str(timeout=30) for ws in sockets))
    assert all(
        json.loads(f) == {"type": "message", "from": "server", "dataType": "json", "data": {"n": 1}}
        for f in firsts
    )
    assert all(json.loads(s)["data"] == "second" for s in seconds)


async def test_closed_connections_leave_the_hub(run: EmulatorRun) -> None:
    service = run.emulator.service(HUB)
    url = service.get_client_access_token(user_id="closer")["url"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = await asyncio.gather(
            *(session.ws_connect(url, protocols=(JSON,)) for _ in range(CONNECTIONS))
        )
        ids = [(await ws.receive_json(timeout=30))["connectionId"] for ws in sockets]
        assert service.user_exists("closer")
        await asyncio.gather(*(ws.close() for ws in sockets))
    for _ in range(100):
        if not service.user_exists("closer"):
            break
        await asyncio.sleep(0.1)
    assert not service.user_exists("closer")
    assert not service.connection_exists(ids[-1])
