"""Benchmark: time per connect event in the app's handler, against @azure/web-pubsub-express's dispatcher.

Both get the same signed connect event (the one the service sends for a client of /api/negotiate: the
JSON subprotocol offered, a display name in the query) and answer it the same way: accept the user,
pick the subprotocol, keep the display name in the connection state. No I/O happens on this path.

- the app: the `eventhandler` function as the Functions host calls it (the user function of the app's
  index), from building the `func.HttpRequest` to the `func.HttpResponse`, including the checks the
  express dispatcher does not make (the `ce-signature`, the user id and connection id rules, strict JSON);
- express: bench/express_connect.mjs in Node.js, from a fresh request stream to the response's `end`,
  with plain objects standing for the request and response (no socket on either side); Node's own
  IncomingMessage and ServerResponse are measured too, for information.

Both warm up, then take turns: a round of the app, a round of express, and so on, so that both see the
same machine; express's rounds go to three Node.js processes in turn, so that no one JIT's luck decides.
The figure is CPU time per event (wall time is printed too); the ratio is taken round by round and its
median printed.

Run: .venv/bin/python bench/connect_handler.py [--events 5000] [--rounds 30] [--node-processes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import time
from collections.abc import Awaitable, Callable

import azure.functions as func
from _stack import EVENTHANDLER_URL, KEY, ROOT, SERVICE_HOST, connect_event, median, user_function

from wps_upstream.services import reset_services

TARGET = 3.0  # the app may take at most this many times express's time per event

eventhandler = user_function("eventhandler")  # what the Functions host calls


class Express:
    """bench/express_connect.mjs in a Node.js process, running a round whenever asked."""

    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        self.process = subprocess.Popen(
            ["node", str(ROOT / "bench" / "express_connect.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._send(json.dumps({"headers": headers, "body": body.decode()}))
        self.answer = json.loads(self._receive())["answer"]

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def _receive(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the express benchmark stopped; run `npm ci` (or `make setup`) first")
        return line

    def round(self, events: int, kind: str = "stand-ins") -> tuple[float, float]:
        """(CPU, wall) microseconds per event over `events` events, on request and response objects of
        `kind`: "stand-ins" (plain objects) or "node" (Node's IncomingMessage and ServerResponse)."""
        self._send(f"{kind} {events}")
        figures = json.loads(self._receive())
        return figures["cpu"], figures["wall"]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def app_round(
    loop: asyncio.AbstractEventLoop, answer: Callable[[], Awaitable[object]], events: int
) -> tuple[float, float]:
    """(CPU, wall) microseconds per event over `events` events."""

    async def run() -> None:
        for _ in range(events):
            await answer()

    cpu, began = time.process_time(), time.perf_counter()
    loop.run_until_complete(run())
    return (time.process_time() - cpu) / events * 1e6, (time.perf_counter() - began) / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000, help="connect events per round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--node-processes", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(
        {
            "WebPubSubConnectionString": f"Endpoint=https://{SERVICE_HOST};AccessKey={KEY};Version=1.0;",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",  # never reached: connect does no I/O
        }
    )
    headers, body = connect_event()

    def answer() -> Awaitable[func.HttpResponse]:
        return eventhandler(func.HttpRequest("POST", EVENTHANDLER_URL, headers=headers, body=body))

    loop = asyncio.new_event_loop()
    first = loop.run_until_complete(answer())
    if first.status_code != 200:
        raise RuntimeError(f"the app answered {first.status_code}: {first.get_body()!r}")
    # Several Node.js processes, the rounds going to each in turn: one process's JIT may settle on faster
    # or slower code than another's, and the comparison should not hang on one draw.
    processes = [Express(headers, body) for _ in range(args.node_processes)]
    try:
        app_round(loop, answer, args.events)  # warm-up
        for express in processes:  # warm-up: the JIT compiles the path
            express.round(args.events)
            express.round(args.events, "node")
        app, node, node_objects = [], [], []
        for index in range(args.rounds):
            express = processes[index % len(processes)]
            app.append(app_round(loop, answer, args.events))
            node.append(express.round(args.events))
            node_objects.append(express.round(args.events, "node"))
    finally:
        for express in processes:
            express.close()
        loop.run_until_complete(reset_services())
        loop.close()
    ratios = [mine[0] / theirs[0] for mine, theirs in zip(app, node, strict=True)]
    ratio = median(ratios)
    print(
        f"connect handler, one signed connect event, {args.rounds} rounds of {args.events:,} events each side"
    )
    print(f"{'':40}{'CPU us/event':>14}{'wall us/event':>15}")
    rows = (
        ("app (eventhandler, signature checked)", app),
        ("@azure/web-pubsub-express", node),
        ("  on Node's IncomingMessage/ServerResponse", node_objects),
    )
    for label, figures in rows:
        cpu, wall = median([f[0] for f in figures]), median([f[1] for f in figures])
        print(f"{label:40}{cpu:>14.1f}{wall:>15.1f}")
    print(f"answers: app {first.get_body().decode()}  express {processes[0].answer['body']}")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"app / express (median of the rounds' ratios) {ratio:.2f}   target <= {TARGET:.1f}: {verdict}")


if __name__ == "__main__":
    main()
