"""Benchmark: `message` events per second through the app, against one bare insert per message.

Azurite and a stand-in for the Web PubSub REST API (bench/_rest_answerer.py) run as separate processes;
the app runs in this process on one event loop, called the way the Functions host calls it
(`eventhandler(func.HttpRequest)`), each call storing the message, broadcasting it and answering.

Measured in one run, in rounds that take turns (medians of the rounds are printed):
- bare: C workers calling azure.data.tables.aio's `create_entity` with a message-sized entity, one
  after the other: one insert per message, the SDK as it comes (with the app's timeouts and retries);
  for information also with the transport option the app gives its clients;
- app: C workers, each a connection sending `message` events one after the other (the next when the
  previous is answered), C = 16 and 64; for information also with one write in flight per partition
  (`MessageStore.max_in_flight = 1`: the queue goes out only when the write in flight returns);
- latency at 1 concurrent: one connection whose messages take turns (ABBA) between group commit and the
  path every append took before it (one transaction per message: `MessageStore.group_commit = False`);
- the app's CPU per message, split into storage (`MessageStore.append`, including the shared transactions
  it waits for), the REST call (`Notifier.broadcast_message`) and the rest (parsing, checks, the handler,
  the answer, the event loop), in a separate pass with CPU accounting on (bench/_cpu.py);
- the CPU each process used during the app runs (this one, Azurite, the REST stand-in), per core;
- the floor: what the SDK calls of one message cost alone (its share of a transaction of as many appends
  as the app's transactions held in the same round, and one `send_to_all`), called one at a time with the
  clients configured as the app configures them. The app runs on one event loop, so even if its own code
  cost nothing it could not pass one core's worth of that: the highest ratio the SDKs leave room for.

Run: .venv/bin/python bench/message_throughput.py [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from _cpu import LOOP, CpuAccount
from _stack import (
    EVENTHANDLER_URL,
    Stack,
    median,
    message_headers,
    percentile,
    repeat_for,
    running_stack,
    user_function,
)
from azure.data.tables.aio import TableClient

from wps_upstream.chat import ChatMessage
from wps_upstream.payload import Payload
from wps_upstream.services import Services, get_services, reset_services
from wps_upstream.store.group_commit import create_together
from wps_upstream.store.keys import claim_row_key, content_digest

TEXT = b"hello, this is a chat message of a typical length"  # 49 bytes
TARGET_16 = 0.9  # app at 16 concurrent / bare at 16 concurrent
TARGET_64 = 1.3  # app at 64 concurrent / the bare single-insert rate (16 concurrent)

eventhandler = user_function("eventhandler")  # what the Functions host calls


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process and its children so far (Linux /proc)."""
    if pid is None:
        return 0.0
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):  # the shim that started Azurite has it as its child
        pids += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for each in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class Run:
    """One measurement: how many operations finished in how long, and their latencies."""

    operations: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    shared: tuple[int, int] = (0, 0)  # (shared transactions, appends in them)
    others: dict[str, float] = field(default_factory=dict)  # CPU share of the other processes

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds / self.operations * 1e3

    @property
    def appends_per_transaction(self) -> int:
        transactions, appends = self.shared
        return max(1, round(appends / transactions)) if transactions else 1


async def run_workers(
    concurrency: int, seconds: float, operation: Callable[[int], Callable[[], Awaitable[None]]], stack: Stack
) -> Run:
    """`concurrency` workers repeating their operation until `seconds` have passed."""
    run = Run()
    others = {"Azurite": stack.azurite.pid, "REST stand-in": stack.rest.pid}
    before = {name: process_cpu_seconds(pid) for name, pid in others.items()}
    began, cpu = time.perf_counter(), time.process_time()
    run.latencies = await repeat_for(seconds, concurrency, operation)
    run.operations = len(run.latencies)
    run.seconds, run.cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    run.others = {
        name: (process_cpu_seconds(pid) - before[name]) / run.seconds for name, pid in others.items()
    }
    return run


def message_entity(index: int, sequence: int) -> dict[str, Any]:
    """An entity shaped like a stored message row (same properties, a 49-byte payload)."""
    return {
        "PartitionKey": "chat",
        "RowKey": f"m{sequence:019d}{uuid.uuid4().hex[:8]}",
        "v": 1,
        "userId": "ann",
        "userName": "Ann",
        "connectionId": f"conn-{index}",
        "time": "2026-12-03T10:11:12.345Z",
        "dataType": "text",
        "size": len(TEXT),
        "chunks": 1,
        "d00": TEXT,
    }


def table_client(stack: Stack, prefix: str, *, configured: bool) -> TableClient:
    """A client of a new table (named `prefix` + random): azure.data.tables.aio as it comes (its defaults,
    but the app's timeouts and retries), or `configured` with the transport options the app gives its
    clients."""
    from wps_upstream.sdk_options import transport_options
    from wps_upstream.settings import Settings

    settings = Settings.from_environ(stack.environment())
    timeout, retries = settings.dependency_timeout_s, settings.dependency_retries
    return TableClient.from_connection_string(
        stack.storage,
        f"{prefix}{uuid.uuid4().hex[:12]}",
        connection_timeout=timeout,
        read_timeout=timeout,
        retry_total=retries,
        **(transport_options() if configured else {}),
    )


async def bare_inserts(stack: Stack, concurrency: int, seconds: float, *, configured: bool = False) -> Run:
    """One `create_entity` per message: a `table_client`, as it comes or `configured`."""
    client = table_client(stack, "bare", configured=configured)
    async with client:
        await client.create_table()
        sequence = iter(range(10**9))

        def operation(index: int) -> Callable[[], Awaitable[None]]:
            async def insert() -> None:
                await client.create_entity(message_entity(index, next(sequence)))

            return insert

        await client.create_entity(message_entity(0, next(sequence)))  # the connection is open
        return await run_workers(concurrency, seconds, operation, stack)


class App:
    """The function app in this process, configured for the stack, with fresh tables per use."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def start(self) -> Services:
        suffix = uuid.uuid4().hex[:12]
        os.environ.update(
            self.stack.environment(MessagesTableName=f"msgs{suffix}", PresenceTableName=f"pres{suffix}")
        )
        await reset_services()
        services = await get_services()
        await send(f"warm-{suffix}", 1)  # tables created, connections open
        return services

    @staticmethod
    async def stop() -> None:
        await reset_services()


async def send(connection_id: str, sequence: int) -> None:
    request = func.HttpRequest(
        "POST", EVENTHANDLER_URL, headers=message_headers(connection_id, str(sequence), "ann"), body=TEXT
    )
    response = await eventhandler(request)
    if response.status_code != 200:
        raise RuntimeError(f"the app answered {response.status_code}: {response.get_body()!r}")


def connection_worker(index: int) -> Callable[[], Awaitable[None]]:
    connection_id, sequence = f"conn-{index}-{uuid.uuid4().hex[:8]}", iter(range(1, 10**9))

    async def step() -> None:
        await send(connection_id, next(sequence))

    return step


async def app_messages(
    stack: Stack, concurrency: int, seconds: float, *, max_in_flight: int | None = None
) -> Run:
    """The app at `concurrency`; `max_in_flight` sets the writes in flight per partition (1: before)."""
    app = App(stack)
    services = await app.start()
    if max_in_flight is not None:
        services.messages.max_in_flight = max_in_flight
    try:
        before = services.messages.commit_statistics
        run = await run_workers(concurrency, seconds, connection_worker, stack)
        after = services.messages.commit_statistics
        run.shared = (after.transactions - before.transactions, after.appends - before.appends)
        return run
    finally:
        await app.stop()


async def app_latency(stack: Stack, seconds: float) -> tuple[Run, Run]:
    """One connection; its messages take turns between group commit and every append alone (ABBA)."""
    app = App(stack)
    services = await app.start()
    grouped, alone = Run(), Run()
    connection_id, sequence = f"lat-{uuid.uuid4().hex[:8]}", 1
    stop = time.perf_counter() + seconds
    try:
        while time.perf_counter() < stop:
            order = ((True, grouped), (False, alone))
            for group_commit, run in order if sequence % 4 == 1 else order[::-1]:
                services.messages.group_commit = group_commit
                began = time.perf_counter()
                await send(connection_id, sequence)
                run.latencies.append(time.perf_counter() - began)
                sequence += 1
        return grouped, alone
    finally:
        services.messages.group_commit = True
        await app.stop()


async def app_cpu_split(stack: Stack, concurrency: int, seconds: float) -> tuple[Run, dict[str, float]]:
    """CPU seconds per part, with accounting on (a separate pass: accounting costs a little)."""
    app = App(stack)
    services = await app.start()
    account = CpuAccount()
    store, notifier = services.messages, services.notifier
    append, broadcast = store.append, notifier.broadcast_message

    async def charged_append(**kwargs: Any) -> Any:
        with account.charge("storage"):
            return await append(**kwargs)

    async def charged_broadcast(*args: Any, **kwargs: Any) -> bool:
        with account.charge("REST call"):
            return await broadcast(*args, **kwargs)

    store.append = charged_append  # type: ignore[method-assign]
    notifier.broadcast_message = charged_broadcast  # type: ignore[method-assign]
    account.install()
    try:
        run = await run_workers(concurrency, seconds, connection_worker, stack)
    finally:
        account.uninstall()
        await app.stop()
    return run, dict(account.seconds)


@dataclass(frozen=True)
class Floor:
    """CPU per message of the SDK calls alone, one call at a time (ms), for `appends` per transaction."""

    appends: int
    storage_ms: float  # the message's share of one transaction (its message row and claim row)
    rest_ms: float  # one send_to_all of the message

    @property
    def total_ms(self) -> float:
        return self.storage_ms + self.rest_ms

    @property
    def one_core_rate(self) -> float:
        """Messages/s one core could carry if the app's own code (parsing, checks, group commit, the
        handler, the answer) cost nothing."""
        return 1e3 / self.total_ms


async def sdk_floor(stack: Stack, appends: list[int], messages: int = 300) -> list[Floor]:
    """The floor for each transaction size in `appends`: the app's own REST client and a table client with
    the app's timeouts, retries and transport options, each call awaited alone, thread CPU time per
    message."""
    app = App(stack)
    services = await app.start()
    table = table_client(stack, "floor", configured=True)
    sequence = iter(range(10**9))

    def rows(count: int) -> list[dict[str, Any]]:
        """`count` appends' rows as the app writes them: a message row and its claim row each."""
        made: list[dict[str, Any]] = []
        for index in range(count):
            message = message_entity(index, next(sequence))
            claim = {
                "PartitionKey": message["PartitionKey"],
                "RowKey": claim_row_key(message["connectionId"], message["RowKey"]),
                "message": message["RowKey"],
                "digest": content_digest("ann", "text", TEXT),
            }
            made += [message, claim]
        return made

    body = ChatMessage(
        "m" + "0" * 27,
        "ann",
        "conn-0",
        "2026-12-03T10:11:12.345Z",
        Payload("text", TEXT, TEXT.decode()),
        "Ann",
    ).to_json()
    async with table:
        try:
            await table.create_table()
            await services.notifier.client.send_to_all(body, content_type="application/json")  # warm
            began = time.thread_time()
            for _ in range(messages):
                await services.notifier.client.send_to_all(body, content_type="application/json")
            rest_ms = (time.thread_time() - began) / messages * 1e3
            floors = []
            for count in appends:
                await create_together(table, rows(count))  # warm: the connection is open
                transactions = max(3, messages // count)
                batches = [rows(count) for _ in range(transactions)]  # built before the clock starts
                began = time.thread_time()
                for batch in batches:
                    if not await create_together(table, batch):
                        raise RuntimeError("storage refused a transaction of the floor")
                storage_ms = (time.thread_time() - began) / (transactions * count) * 1e3
                floors.append(Floor(count, storage_ms, rest_ms))
        finally:
            await app.stop()
    return floors


@dataclass
class Results:
    runs: dict[str, list[Run]] = field(default_factory=dict)
    grouped: list[Run] = field(default_factory=list)
    alone: list[Run] = field(default_factory=list)
    splits: dict[int, tuple[Run, dict[str, float]]] = field(default_factory=dict)
    floors: dict[int, list[Floor]] = field(default_factory=dict)  # per concurrency, one per round

    def add(self, name: str, run: Run) -> None:
        self.runs.setdefault(name, []).append(run)

    def rate(self, name: str) -> float:
        return median([run.rate for run in self.runs[name]])

    def ratio(self, name: str, yardstick: str) -> float:
        """The median over the rounds of this round's rate of `name` / this round's rate of `yardstick`."""
        pairs = zip(self.runs[name], self.runs[yardstick], strict=True)
        return median([run.rate / other.rate for run, other in pairs])


async def measure(seconds: float, rounds: int) -> Results:
    results = Results()
    with running_stack() as stack:
        for round_number in range(1, rounds + 1):
            print(f"round {round_number} of {rounds}", flush=True)
            results.add("bare16", await bare_inserts(stack, 16, seconds))
            results.add("app16", await app_messages(stack, 16, seconds))
            results.add("bare64", await bare_inserts(stack, 64, seconds))
            results.add("app64", await app_messages(stack, 64, seconds))
            sizes = [results.runs[f"app{c}"][-1].appends_per_transaction for c in (16, 64)]
            for concurrency, floor in zip((16, 64), await sdk_floor(stack, sizes), strict=True):
                results.floors.setdefault(concurrency, []).append(floor)
            results.add("configured16", await bare_inserts(stack, 16, seconds, configured=True))
            results.add("one16", await app_messages(stack, 16, seconds, max_in_flight=1))
            results.add("one64", await app_messages(stack, 64, seconds, max_in_flight=1))
            grouped, alone = await app_latency(stack, seconds)
            results.grouped.append(grouped)
            results.alone.append(alone)
        for concurrency in (16, 64):
            results.splits[concurrency] = await app_cpu_split(stack, concurrency, seconds)
    return results


def report(results: Results) -> None:
    print()
    print("message events/s (store + broadcast + answer), median of the rounds")
    print(f"{'':48}{'per second':>11}{'CPU ms/op':>10}{'per shared tx':>14}  other processes, CPU/core")
    labels = {
        "bare16": "bare create_entity, 16 concurrent",
        "bare64": "bare create_entity, 64 concurrent",
        "app16": "app messages, 16 concurrent",
        "app64": "app messages, 64 concurrent",
        "configured16": "bare, app's transport option, 16 (info)",
        "one16": "app, one write in flight (before), 16 (info)",
        "one64": "app, one write in flight (before), 64 (info)",
    }
    for name, label in labels.items():
        runs = results.runs[name]
        shared = [run.shared for run in runs if run.shared[0]]
        per_tx = f"{sum(a for _, a in shared) / sum(t for t, _ in shared):.1f}" if shared else "-"
        cpu = median([run.cpu_ms for run in runs])
        others = "  ".join(f"{who} {median([r.others[who] for r in runs]):.0%}" for who in runs[0].others)
        print(f"{label:48}{results.rate(name):>11,.0f}{cpu:>10.2f}{per_tx:>14}  {others}")
    print()
    print("ratios, taken round by round (the machine's speed drifts), median of the rounds:")
    checks = [
        ("app at 16 / bare at 16", results.ratio("app16", "bare16"), TARGET_16),
        ("app at 64 / bare single-insert rate (at 16)", results.ratio("app64", "bare16"), TARGET_64),
        ("app at 64 / bare at 64 (information)", results.ratio("app64", "bare64"), None),
        ("app at 16 / one write in flight (information)", results.ratio("app16", "one16"), None),
        ("app at 64 / one write in flight (information)", results.ratio("app64", "one64"), None),
    ]
    for label, ratio, target in checks:
        verdict = "" if target is None else f"  target >= {target}: {'met' if ratio >= target else 'NOT met'}"
        print(f"  {label:48}{ratio:6.2f}{verdict}")
    report_latency(results)
    for concurrency, (run, split) in results.splits.items():
        report_split(concurrency, run, split)
    report_floor(results)


def report_latency(results: Results) -> None:
    grouped = [x for run in results.grouped for x in run.latencies]
    alone = [x for run in results.alone for x in run.latencies]
    print()
    print(f"latency at 1 concurrent, ms ({len(grouped)} messages each way, taking turns)")
    for label, values in (("group commit", grouped), ("every append alone (before)", alone)):
        p50, p99 = percentile(values, 0.5) * 1e3, percentile(values, 0.99) * 1e3
        print(f"  {label:30}p50 {p50:6.2f}   p99 {p99:6.2f}")
    print(
        "  group commit / before, with a 95% bootstrap interval; worse only if the interval lies above 1.00:"
    )
    for share, name in ((0.5, "p50"), (0.99, "p99")):
        ratio = percentile(grouped, share) / percentile(alone, share)
        low, high = ratio_interval(grouped, alone, share)
        verdict = "NOT met (worse)" if low > 1.0 else "met (no worse)"
        print(f"  {name} {ratio:5.2f}  [{low:4.2f}, {high:4.2f}]   target: no worse: {verdict}")


def ratio_interval(
    mine: list[float], theirs: list[float], share: float, draws: int = 2000
) -> tuple[float, float]:
    """95% bootstrap interval of percentile(mine) / percentile(theirs): resample both, 2.5%..97.5%."""
    rng = random.Random(20261203)  # fixed: the same samples always give the same interval
    ratios = sorted(
        percentile(rng.choices(mine, k=len(mine)), share)
        / percentile(rng.choices(theirs, k=len(theirs)), share)
        for _ in range(draws)
    )
    return ratios[int(0.025 * draws)], ratios[int(0.975 * draws) - 1]


def report_split(concurrency: int, run: Run, split: dict[str, float]) -> None:
    per = {part: seconds / run.operations * 1e3 for part, seconds in split.items()}
    total = sum(per.values())
    storage, rest_call = per.get("storage", 0.0), per.get("REST call", 0.0)
    print()
    print(f"app CPU per message at {concurrency} concurrent ({run.rate:,.0f}/s with accounting on), ms")
    print(f"  storage    {storage:6.3f}  {storage / total:4.0%}")
    print(f"  REST call  {rest_call:6.3f}  {rest_call / total:4.0%}")
    rest = total - storage - rest_call
    print(f"  the rest   {rest:6.3f}  {rest / total:4.0%}  (the event loop itself: {per.get(LOOP, 0.0):.3f})")
    print(f"  total      {total:6.3f}")


def report_floor(results: Results) -> None:
    print()
    print("the floor: CPU per message of the SDK calls alone (one call at a time, the app's transaction")
    print("size of the same round), ms; each column is the median of the rounds. The app runs on one event")
    print("loop: even if its own code cost nothing, it could not pass one core's worth of this")
    print(
        f"{'':22}{'appends/tx':>11}{'storage':>9}{'REST call':>11}{'total':>8}{'/s on one core':>16}"
        "  / bare at 16"
    )
    targets = {16: TARGET_16, 64: TARGET_64}
    for concurrency, floors in results.floors.items():
        best = median(
            [
                floor.one_core_rate / bare.rate
                for floor, bare in zip(floors, results.runs["bare16"], strict=True)
            ]
        )
        figures = [
            median([getattr(floor, name) for floor in floors])
            for name in ("appends", "storage_ms", "rest_ms", "total_ms", "one_core_rate")
        ]
        appends, storage, rest_call, total, rate = figures
        print(
            f"  as at {concurrency} concurrent{appends:>9.0f}{storage:>9.3f}{rest_call:>11.3f}{total:>8.3f}"
            f"{rate:>16,.0f}  {best:5.2f} (target {targets[concurrency]})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report(asyncio.run(measure(args.seconds, args.rounds)))


if __name__ == "__main__":
    main()
