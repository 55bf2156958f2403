"""Benchmark: broadcast fan-out of the emulator to 1,000 connections, per client protocol.

Starts `python -m wps_emulator` on a free port, opens 1,000 WebSocket connections with one protocol,
sends broadcasts through the REST API (Microsoft's aio service SDK, `send_to_all`) and measures how
long it takes until every connection has received every broadcast. Prints deliveries per second for
the simple, JSON and reliable JSON protocols side by side, measured in the same run.

Run: .venv/bin/python bench/emulator_fanout.py [--connections 1000] [--broadcasts 200]
The clients run in this process, so the figure is a lower bound of what the emulator can do alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from azure.messaging.webpubsubservice import WebPubSubServiceClient
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient as AsyncServiceClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devhost.processes import ManagedProcess, free_port, python_module_argv

KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
PROTOCOLS = {
    "simple": None,
    "json": "json.webpubsub.azure.v1",
    "reliable": "json.reliable.webpubsub.azure.v1",
}


@dataclass
class Result:
    protocol: str
    connections: int
    broadcasts: int
    seconds: float

    @property
    def deliveries_per_second(self) -> float:
        return self.connections * self.broadcasts / self.seconds


async def measure(endpoint: str, protocol: str, connections: int, broadcasts: int) -> Result:
    """Open the connections, broadcast, wait for every delivery, close."""
    hub = f"bench{protocol}"
    connection_string = f"Endpoint={endpoint};AccessKey={KEY};Version=1.0;"
    url = WebPubSubServiceClient.from_connection_string(connection_string, hub=hub).get_client_access_token(
        user_id="bench"
    )["url"]
    subprotocol = PROTOCOLS[protocol]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        for start in range(0, connections, 200):
            wave = await asyncio.gather(
                *(
                    session.ws_connect(url, protocols=(subprotocol,) if subprotocol else ())
                    for _ in range(start, min(start + 200, connections))
                )
            )
            sockets += wave
        if subprotocol:
            await asyncio.gather(*(ws.receive(timeout=30) for ws in sockets))  # the connected messages

        async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
            for count in range(1, broadcasts + 1):
                msg = await ws.receive(timeout=120)
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    raise RuntimeError(f"{protocol}: connection ended after {count - 1} messages: {msg}")
                if protocol == "reliable" and count % 100 == 0:  # acknowledge, as the SDKs do
                    await ws.send_str(json.dumps({"type": "sequenceAck", "sequenceId": count}))

        payload = {"text": "x" * 100}
        async with AsyncServiceClient.from_connection_string(connection_string, hub=hub) as service:
            receivers = [asyncio.create_task(drain(ws)) for ws in sockets]
            started = time.perf_counter()
            for _ in range(broadcasts):
                await service.send_to_all(payload)
            await asyncio.gather(*receivers)
            elapsed = time.perf_counter() - started
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return Result(protocol, connections, broadcasts, elapsed)


async def main_async(connections: int, broadcasts: int) -> list[Result]:
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-emulator-"))
    process = ManagedProcess(
        "emulator",
        python_module_argv("wps_emulator", "--port", str(port), "--log-level", "WARNING"),
        log_dir / "emulator.log",
    ).start()
    try:
        process.wait_for_http(f"http://127.0.0.1:{port}/api/health", method="HEAD")
        endpoint = f"http://127.0.0.1:{port}"
        results = []
        for protocol in PROTOCOLS:
            results.append(await measure(endpoint, protocol, connections, broadcasts))
        return results
    finally:
        process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=200)
    args = parser.parse_args()
    results = asyncio.run(main_async(args.connections, args.broadcasts))
    baseline = results[0].deliveries_per_second
    print(
        f"broadcast fan-out, {args.connections} connections x {args.broadcasts} broadcasts (REST send_to_all)"
    )
    print(f"{'protocol':<10}{'seconds':>10}{'deliveries/s':>15}{'vs simple':>11}")
    for r in results:
        ratio = r.deliveries_per_second / baseline
        print(f"{r.protocol:<10}{r.seconds:>10.2f}{r.deliveries_per_second:>15,.0f}{ratio:>10.2f}x")


if __name__ == "__main__":
    main()
