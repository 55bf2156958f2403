"""Benchmark: broadcast fan-out of the emulator to 1,000 connections, per client protocol.

Starts `python -m wps_emulator` on a free port, opens 1,000 WebSocket connections with one protocol,
sends broadcasts through the REST API (Microsoft's aio service SDK, `send_to_all`) and measures how
long it takes until every connection has received every broadcast. Prints deliveries per second for
the simple, JSON and reliable JSON protocols side by side, measured in the same run.

Run: .venv/bin/python bench/emulator_fanout.py [--connections 1000] [--broadcasts 200]
The clients run in this process (a minimal frame-counting client, so that most of the CPU goes to
the emulator); on a 2-core machine they still compete with it, so the figure is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from azure.messaging.webpubsubservice import WebPubSubServiceClient
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient as AsyncServiceClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devhost.processes import ManagedProcess, free_port, python_module_argv
from wps_emulator.config import DEFAULT_ACCESS_KEY

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
    emulator_cpu_seconds: float = 0.0

    @property
    def deliveries(self) -> int:
        return self.connections * self.broadcasts

    @property
    def deliveries_per_second(self) -> float:
        return self.deliveries / self.seconds

    @property
    def cpu_microseconds_per_delivery(self) -> float:
        return self.emulator_cpu_seconds * 1e6 / self.deliveries


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _next_frame(buf: bytearray, pos: int) -> tuple[int, int] | None:
    """(opcode, end) of the whole server frame at `pos` (RFC 6455 5.2, unmasked), or None if incomplete."""
    if len(buf) - pos < 2:
        return None
    opcode, size, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
    if size == 126:
        if len(buf) - pos < 4:
            return None
        size, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
    elif size == 127:
        if len(buf) - pos < 10:
            return None
        size, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
    end = pos + head + size
    return (opcode, end) if end <= len(buf) else None


class CountingClient(asyncio.Protocol):
    """A minimal WebSocket client that only counts the data frames it receives.

    Much cheaper per message than a full client library, so the figure is about the emulator; for
    the reliable protocol it acknowledges every 100 messages, as the SDKs do.
    """

    def __init__(self, path: str, host: str, subprotocol: str | None, expected: int) -> None:
        self.path, self.host, self.subprotocol = path, host, subprotocol
        self.expected = expected  # data frames, including the connected system message
        self.frames = 0
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.subprotocol:
            lines.append(f"Sec-WebSocket-Protocol: {self.subprotocol}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            if b" 101 " not in status:
                self.opened.set_exception(RuntimeError(f"handshake failed: {status!r}"))
                return
            del self.buffer[: end + 4]
            self.upgraded = True
            self.opened.set_result(None)
        self._count_frames()

    def _count_frames(self) -> None:
        buf, pos = self.buffer, 0
        while (frame := _next_frame(buf, pos)) is not None:
            opcode, pos = frame
            if opcode in (1, 2):
                self._on_data_frame()
            elif opcode == 8:
                self.done.set_exception(RuntimeError(f"closed by the emulator after {self.frames} frames"))
        del buf[:pos]
        if self.frames >= self.expected and not self.done.done():
            self.done.set_result(None)

    def _on_data_frame(self) -> None:
        self.frames += 1
        # Reliable clients acknowledge every 100 messages (the first frame is the connected message).
        if self.subprotocol == PROTOCOLS["reliable"] and self.frames > 1 and (self.frames - 1) % 100 == 0:
            self._send_text(json.dumps({"type": "sequenceAck", "sequenceId": self.frames - 1}))

    def _send_text(self, text: str) -> None:
        # Clients must mask their frames; a zero mask key leaves the payload as it is.
        payload = text.encode()
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload)

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.write(bytes((0x88, 0x82)) + b"\0\0\0\0" + struct.pack("!H", 1000))
            self.transport.close()


async def measure(endpoint: str, protocol: str, connections: int, broadcasts: int, pid: int) -> Result:
    """Open the connections, broadcast, wait for every delivery, close."""
    hub = f"bench{protocol}"
    connection_string = f"Endpoint={endpoint};AccessKey={DEFAULT_ACCESS_KEY};Version=1.0;"
    url = WebPubSubServiceClient.from_connection_string(connection_string, hub=hub).get_client_access_token(
        user_id="bench"
    )["url"]
    parts = urlsplit(url)
    subprotocol = PROTOCOLS[protocol]
    expected = broadcasts + (1 if subprotocol else 0)
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(connections):
        client = CountingClient(f"{parts.path}?{parts.query}", parts.netloc, subprotocol, expected)
        await loop.create_connection(lambda c=client: c, parts.hostname, parts.port)
        clients.append(client)
    await asyncio.gather(*(c.opened for c in clients))
    payload = {"text": "x" * 100}
    try:
        async with AsyncServiceClient.from_connection_string(connection_string, hub=hub) as service:
            started, cpu_before = time.perf_counter(), cpu_seconds(pid)
            for _ in range(broadcasts):
                await service.send_to_all(payload)
            await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), timeout=300)
            elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    finally:
        for c in clients:
            c.close()
    return Result(protocol, connections, broadcasts, elapsed, cpu)


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
            assert process.pid is not None
            results.append(await measure(endpoint, protocol, connections, broadcasts, process.pid))
            await asyncio.sleep(1)  # let the emulator finish closing the previous connections
        return results
    finally:
        process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=200)
    args = parser.parse_args()
    results = asyncio.run(main_async(args.connections, args.broadcasts))
    baseline = results[0]
    print(
        f"broadcast fan-out, {args.connections} connections x {args.broadcasts} broadcasts (REST send_to_all)"
    )
    print(
        f"{'protocol':<10}{'seconds':>9}{'deliveries/s':>14}{'vs simple':>11}"
        f"{'emulator CPU us/delivery':>26}{'vs simple':>11}"
    )
    for r in results:
        speed = r.deliveries_per_second / baseline.deliveries_per_second
        cost = r.cpu_microseconds_per_delivery / baseline.cpu_microseconds_per_delivery
        print(
            f"{r.protocol:<10}{r.seconds:>9.2f}{r.deliveries_per_second:>14,.0f}{speed:>10.2f}x"
            f"{r.cpu_microseconds_per_delivery:>26.1f}{cost:>10.2f}x"
        )
    print(
        "deliveries/s is end to end (the clients share the 2 cores); emulator CPU per delivery is what the "
        "emulator alone spent (user + system time)."
    )


if __name__ == "__main__":
    main()
