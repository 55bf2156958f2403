"""Benchmark: one app instance (one event loop) at 1, 4, 8, 16, 32 and 64 concurrent events.

For each level: `message` events per second, the app's CPU per message, p50/p99 latency and how many
messages a shared transaction held; and the p50/p99 latency of `connect` events at the same level. These
are the figures the HTTP per-instance concurrency of Flex Consumption is chosen from (docs/performance.md):
Flex sends an instance at most that many requests at a time.

Azurite and the REST stand-in run in their own processes, as in bench/message_throughput.py.

Run: .venv/bin/python bench/concurrency_sweep.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable

import azure.functions as func
from _stack import (
    EVENTHANDLER_URL,
    connect_event,
    median,
    percentile,
    repeat_for,
    running_stack,
    user_function,
)
from message_throughput import App, Run, connection_worker, run_workers

eventhandler = user_function("eventhandler")  # what the Functions host calls


LEVELS = (1, 4, 8, 16, 32, 64)


def connect_worker(index: int) -> Callable[[], Awaitable[None]]:
    headers, body = connect_event(connection_id=f"sweep-{index}-{uuid.uuid4().hex[:8]}")

    async def step() -> None:
        response = await eventhandler(func.HttpRequest("POST", EVENTHANDLER_URL, headers=headers, body=body))
        if response.status_code != 200:
            raise RuntimeError(f"the app answered {response.status_code}: {response.get_body()!r}")

    return step


async def connects(concurrency: int, seconds: float) -> list[float]:
    """Latencies of connect events answered by `concurrency` workers (no I/O: the loop is the limit)."""
    return await repeat_for(seconds, concurrency, connect_worker)


async def sweep(seconds: float, rounds: int) -> tuple[dict[int, list[Run]], dict[int, list[float]]]:
    messages: dict[int, list[Run]] = {level: [] for level in LEVELS}
    connect_latencies: dict[int, list[float]] = {level: [] for level in LEVELS}
    with running_stack() as stack:
        for round_number in range(1, rounds + 1):
            print(f"round {round_number} of {rounds}", flush=True)
            for level in LEVELS:
                app = App(stack)
                services = await app.start()
                try:
                    before = services.messages.commit_statistics
                    run = await run_workers(level, seconds, connection_worker, stack)
                    after = services.messages.commit_statistics
                    run.shared = (after.transactions - before.transactions, after.appends - before.appends)
                    messages[level].append(run)
                    connect_latencies[level] += await connects(level, min(seconds, 1.0))
                finally:
                    await app.stop()
    return messages, connect_latencies


def report(messages: dict[int, list[Run]], connect_latencies: dict[int, list[float]]) -> None:
    print()
    print("one instance (one event loop), medians of the rounds; latency over every event of every round")
    print(
        f"{'concurrent':>10}{'messages/s':>12}{'CPU ms/msg':>12}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'per shared tx':>15}{'connect p50 ms':>16}{'p99 ms':>9}"
    )
    for level, runs in messages.items():
        latencies = [x for run in runs for x in run.latencies]
        shared = [run.shared for run in runs if run.shared[0]]
        per_tx = f"{sum(a for _, a in shared) / sum(t for t, _ in shared):.1f}" if shared else "-"
        connects_ = connect_latencies[level]
        print(
            f"{level:>10}{median([r.rate for r in runs]):>12,.0f}{median([r.cpu_ms for r in runs]):>12.2f}"
            f"{percentile(latencies, 0.5) * 1e3:>9.1f}{percentile(latencies, 0.99) * 1e3:>9.1f}{per_tx:>15}"
            f"{percentile(connects_, 0.5) * 1e3:>16.2f}{percentile(connects_, 0.99) * 1e3:>9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report(*asyncio.run(sweep(args.seconds, args.rounds)))


if __name__ == "__main__":
    main()
