"""A stand-in for the Web PubSub REST API in its own process, for the benchmarks: answers every request
with the status the service SDK expects (202 for sends, 200 otherwise) and does nothing else.

The real service runs on other machines; a process this light keeps its CPU from competing with the app
and Azurite on a small benchmark machine. It keeps connections open (HTTP/1.1) and reads bodies by
Content-Length (the SDK does not send chunked bodies).

Run: python bench/_rest_answerer.py PORT
"""

from __future__ import annotations

import asyncio
import sys

_ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Answerer(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = content_length(head)
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            assert self.transport is not None
            self.transport.write(_ACCEPTED if head.startswith(b"post") and b"/:send" in head else _OK)


def content_length(head: bytes) -> int:
    """The Content-Length of a request head (lower-cased), 0 when absent."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip() == b"content-length":
            return int(value.strip())
    return 0


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Answerer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
