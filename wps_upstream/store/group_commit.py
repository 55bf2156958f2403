"""Group commit: concurrent appends to one partition share one entity-group transaction.

Each append brings its rows (a message row and its claim row). When nothing is being written to the
partition, the append leads: it writes its own rows at once, exactly as a lone append always has, so a
message on a quiet hub waits for no timer and no one else. Appends that arrive while a write is in flight
queue up; when it returns, the queue goes out as one transaction (at most 100 entities and well under
4 MiB), then the next, until the queue is empty. Under load a second transaction starts as soon as
EARLY_BATCH appends wait, so that the app builds one while storage commits the other (at most
MAX_IN_FLIGHT per partition). Waiters are told in the order their transactions were started, so within a
process messages are acknowledged in the order of their keys. Every waiter learns the outcome of its own
transaction:

- COMMITTED: its rows are stored (the transaction committed as a whole);
- ALONE: it must write its rows the way a lone append does. A transaction refused with a 4xx (a claim
  that already exists, a row the service refuses) says only that *some* row failed and stores nothing, so
  every append of it goes alone: the one at fault gets its own answer, the others are stored once;
- StoreUnavailable: storage failed or timed out. Nothing of the transaction was acknowledged.

Two appends with the same key (an event and its redelivery) never share a transaction: the later one
goes alone after the earlier one's transaction, and so finds the earlier one's claim.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables.aio import TableClient

from wps_upstream.store.errors import StoreUnavailable
from wps_upstream.store.tables import Table, table_missing

MAX_TRANSACTION_ENTITIES = 100  # Azure's limit for one entity-group transaction
MAX_TRANSACTION_BYTES = 3 * 1024 * 1024 + 512 * 1024  # below Azure's 4 MiB, for the estimate's sake
_TRANSACTION_OVERHEAD = 4 * 1024  # the batch and changeset envelopes
_PART_OVERHEAD = 1024  # per entity: part headers, the request line with the table URL, the JSON keys
_PROPERTY_OVERHEAD = 64  # per property: the quoted name, its "@odata.type" annotation, separators
_ACTION = "storing messages"
# Writes in flight per partition, and how many appends must wait before a second one starts: a transaction
# costs the app about as much CPU as three more messages in it, so eight are worth a write of their own.
MAX_IN_FLIGHT = 2
EARLY_BATCH = 8
# The service need not echo each created row back: less to send, and less for the SDK to parse.
CREATE_OPTIONS = {"response_preference": "return-no-content"}


class Outcome(Enum):
    """What an append is told when its turn comes."""

    LEAD = "lead"  # nothing is in flight: write your rows yourself, then call `done`
    COMMITTED = "committed"  # your rows were stored in a shared transaction
    ALONE = "alone"  # write your rows yourself (the shared transaction was refused, or you repeat a key)


def request_bytes(entity: Mapping[str, Any]) -> int:
    """An upper bound of what `entity` adds to a transaction request.

    Binary travels as base64; a string may travel as \\uXXXX escapes, 6 bytes per UTF-16 unit.
    """
    size = _PART_OVERHEAD
    for name, value in entity.items():
        size += _PROPERTY_OVERHEAD + 6 * len(name)
        if isinstance(value, bytes | bytearray):
            size += 4 * math.ceil(len(value) / 3)
        elif isinstance(value, str):
            size += 12 * len(value)  # each character is at most two UTF-16 units
        else:
            size += 32
    return size


@dataclass(eq=False)
class Pending:
    """One append's rows (created together, in one partition) and the future its outcome arrives in."""

    partition: str
    key: str  # rows with the same key never share a transaction
    rows: Sequence[Mapping[str, Any]]
    size: int = 0  # request bytes, from request_bytes()
    outcome: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def resolve(self, outcome: Outcome) -> None:
        if not self.outcome.done():  # a waiter that gave up has cancelled its future
            self.outcome.set_result(outcome)

    def fail(self, error: StoreUnavailable) -> None:
        if not self.outcome.done():
            failure = StoreUnavailable(error.action)
            failure.__cause__ = error.__cause__
            self.outcome.set_exception(failure)


@dataclass(frozen=True)
class Statistics:
    """What the group commit has done so far (for tests, benchmarks and diagnostics)."""

    transactions: int  # shared transactions submitted
    appends: int  # appends that went out in them
    largest: int  # the most appends one of them held


@dataclass(eq=False)
class _Partition:
    """A partition with writes in flight (a leader's, shared transactions) and the appends queued behind."""

    queue: deque[Pending] = field(default_factory=deque)
    writes: int = 1  # writes in flight; the leader's, which made the partition busy, counts
    leader: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """Done when the leader's write is over."""
    newest: asyncio.Future[None] = field(init=False)
    """Done when the newest write's waiters have been told their outcome (the next write waits for it)."""
    sends: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.newest = self.leader


class GroupCommit:
    """Per partition: at most `max_in_flight` writes; whatever queues meanwhile goes out as the next one."""

    def __init__(self, table: Table, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._table = table
        self.max_in_flight = max_in_flight
        """Writes in flight per partition; 1 sends the queue only when the write in flight returns."""
        self._partitions: dict[str, _Partition] = {}
        self._transactions = 0
        self._appends = 0
        self._largest = 0

    @property
    def statistics(self) -> Statistics:
        return Statistics(self._transactions, self._appends, self._largest)

    def lead(self, partition: str) -> bool:
        """True when nothing is being written to `partition`: the caller writes its rows itself, now, and
        calls `done` after. False when a write is in flight: the caller queues (`join`)."""
        if partition in self._partitions:
            return False
        self._partitions[partition] = _Partition()
        return True

    async def join(self, pending: Pending) -> Outcome:
        """Queue behind the writes in flight and wait for the outcome of the transaction `pending` goes out
        in (LEAD instead when the partition has gone idle meanwhile: write, then call `done`). Cancelling
        the wait takes it out of the queue if it has not gone out yet."""
        state = self._partitions.get(pending.partition)
        if state is None:
            self._partitions[pending.partition] = _Partition()
            return Outcome.LEAD
        state.queue.append(pending)
        self._send_when_due(pending.partition, state)
        return await pending.outcome

    def done(self, partition: str) -> None:
        """The leader's write is over: its waiters may follow; send what queued meanwhile, or rest."""
        state = self._partitions.get(partition)
        if state is None:  # closed meanwhile
            return
        _settle(state.leader)  # a leader has no write before it: its caller is told at once
        self._write_ended(partition, state)

    async def close(self) -> None:
        """Stop sending; appends still waiting get StoreUnavailable."""
        states, self._partitions = list(self._partitions.values()), {}
        closed = StoreUnavailable("the store was closed")
        for state in states:
            for pending in state.queue:
                pending.fail(closed)
            for send in state.sends:
                send.cancel()
        await asyncio.gather(*(send for state in states for send in state.sends), return_exceptions=True)

    def _send_when_due(self, partition: str, state: _Partition) -> None:
        """Send the queue when no write is in flight, or when enough has queued to start another write
        beside the ones in flight (while storage commits one, the app builds the next)."""
        if not state.queue:
            return
        if state.writes == 0 or (state.writes < self.max_in_flight and len(state.queue) >= EARLY_BATCH):
            loop = asyncio.get_running_loop()
            before, settled = state.newest, loop.create_future()
            state.writes, state.newest = state.writes + 1, settled
            send = loop.create_task(self._send(partition, state, before, settled))
            state.sends.add(send)
            send.add_done_callback(state.sends.discard)

    def _write_ended(self, partition: str, state: _Partition) -> None:
        if self._partitions.get(partition) is not state:  # closed meanwhile
            return
        state.writes -= 1
        self._send_when_due(partition, state)
        if not state.writes:
            del self._partitions[partition]

    async def _send(
        self,
        partition: str,
        state: _Partition,
        before: asyncio.Future[None],
        settled: asyncio.Future[None],
    ) -> None:
        """One transaction from the head of the queue. Its waiters are told after those of the write before
        it, so that within this process messages are acknowledged in the order of their keys."""
        batch: list[Pending] = []
        held: list[Pending] = []
        try:
            batch, held = _take(state.queue)
            if len(batch) == 1:
                held.append(batch.pop())  # one append writes as a lone one does: no transaction to share
            outcome = await self._commit(batch) if batch else Outcome.ALONE
            await asyncio.wait([before])
            for pending in batch:
                _tell(pending, outcome)
            for pending in held:
                pending.resolve(Outcome.ALONE)
        except BaseException as error:  # a bug or a cancellation: no waiter may be left waiting
            failure = StoreUnavailable(f"{_ACTION}: {type(error).__name__}")
            failure.__cause__ = error
            for pending in (*batch, *held, *state.queue):
                pending.fail(failure)
            state.queue.clear()
            raise
        finally:
            _settle(settled)
            self._write_ended(partition, state)

    async def _commit(self, batch: list[Pending]) -> Outcome | StoreUnavailable:
        """Submit one transaction for `batch`: COMMITTED, ALONE when it was refused, or the
        StoreUnavailable its waiters get when storage failed or timed out."""
        self._transactions += 1
        self._appends += len(batch)
        self._largest = max(self._largest, len(batch))
        rows = [row for pending in batch for row in pending.rows]

        async def submit(table: TableClient) -> bool:
            return await create_together(table, rows)

        try:
            committed = await self._table.run(_ACTION, submit)
        except StoreUnavailable as error:
            return error
        return Outcome.COMMITTED if committed else Outcome.ALONE


def _tell(pending: Pending, outcome: Outcome | StoreUnavailable) -> None:
    if isinstance(outcome, StoreUnavailable):
        pending.fail(outcome)
    else:
        pending.resolve(outcome)


def _settle(settled: asyncio.Future[None]) -> None:
    if not settled.done():
        settled.set_result(None)


async def create_together(table: TableClient, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Create the rows in one entity-group transaction; False when the service refused it with a 4xx
    (a row that already exists, or one it does not accept): then nothing was stored."""
    try:
        await table.submit_transaction([("create", row, CREATE_OPTIONS) for row in rows])
    except HttpResponseError as error:
        status = error.status_code or 0
        # 408 and 429 mean "later", not "refused"; a missing table is created by Table.run, which then
        # sends the transaction again.
        if 400 <= status < 500 and status not in (408, 429) and not table_missing(error):
            return False
        raise
    return True


def _take(queue: deque[Pending]) -> tuple[list[Pending], list[Pending]]:
    """The next transaction from the head of the queue, and the appends that repeat a key in it."""
    batch: list[Pending] = []
    held: list[Pending] = []
    keys: set[str] = set()
    entities, size = 0, _TRANSACTION_OVERHEAD
    while queue:
        pending = queue[0]
        if pending.outcome.done():  # its sender gave up before it went out: never store it
            queue.popleft()
            continue
        if batch and (
            entities + len(pending.rows) > MAX_TRANSACTION_ENTITIES
            or size + pending.size > MAX_TRANSACTION_BYTES
        ):
            break
        queue.popleft()
        if pending.key in keys:
            held.append(pending)
            continue
        keys.add(pending.key)
        batch.append(pending)
        entities += len(pending.rows)
        size += pending.size
    return batch, held
