"""Timer functions: run on their schedules and on demand, one run at a time per function.

Scheduling follows the host's timer listener: the next occurrence is computed from the moment a run was
due, once the run has ended. A run that lasts past one or more occurrences is therefore followed at once
by one more run (never by one per missed occurrence), and runs of one function never overlap. A run asked
for while another run of the same function is in progress (on demand, or on schedule during an on-demand
run) waits for it and starts when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

from devhost.indexing import TimerFunction
from devhost.invocation import InvocationContext, invoke_timer

log = logging.getLogger("devhost")


async def _sleep_until(due: datetime) -> None:
    """Sleep until a local wall-clock time (naive, as the schedules give it; timestamp() knows about DST)."""
    await asyncio.sleep(max(0.0, due.timestamp() - time.time()))


def _forget(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    """A done-callback that drops the task from its set and logs it if it ended on an unexpected error."""

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("A timer task ended on an error", exc_info=task.exception())

    return done


class TimerRunner:
    """Runs the app's timer functions; `start` begins the schedules, `run_now` runs one on demand."""

    def __init__(self, timers: Sequence[TimerFunction], executor: Executor, directory: str) -> None:
        self.timers = tuple(timers)
        self._executor = executor
        self._directory = directory
        self._locks = {timer.name: asyncio.Lock() for timer in self.timers}
        self._schedules: set[asyncio.Task[None]] = set()
        self._runs: set[asyncio.Task[None]] = set()
        self._stopping = False

    def start(self) -> None:
        """Start every timer's schedule (a function with run_on_startup runs once first)."""
        for timer in self.timers:
            self._keep(self._schedules, self._follow_schedule(timer))

    def run_now(self, timer: TimerFunction, reason: str) -> None:
        """Run a timer function once in the background (after a run of it in progress, if any)."""
        self._keep(self._runs, self._run(timer, reason))

    async def stop(self, grace_s: float) -> None:
        """Stop the schedules; let runs in progress end within grace_s, then cancel them.

        Like the host when it stops, a run that was waiting for its turn does not start."""
        self._stopping = True
        schedules = list(self._schedules)
        for task in schedules:
            task.cancel()
        await asyncio.gather(*schedules, return_exceptions=True)
        if self._runs:
            _, late = await asyncio.wait(list(self._runs), timeout=grace_s)
            for task in late:
                log.warning("Stopping: a timer run did not end within %.0f s and is cancelled", grace_s)
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    @staticmethod
    def _keep(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        tasks.add(task)
        task.add_done_callback(_forget(tasks))
        return task

    async def _follow_schedule(self, timer: TimerFunction) -> None:
        reference = datetime.now()
        if timer.run_on_startup:
            await self._run_and_wait(timer, "run on startup")
        while True:
            # The host's rule: the next occurrence after the time the last one fired (not after the run's
            # end), so a run that lasts past the next occurrence is followed by one immediate run.
            due = timer.schedule.next_after(reference)
            await _sleep_until(due)
            reference = max(due, datetime.now())
            await self._run_and_wait(timer, f"scheduled for {due.isoformat(timespec='seconds')}")

    async def _run_and_wait(self, timer: TimerFunction, reason: str) -> None:
        # The run is a task of its own: stopping the schedule lets a run in progress end within the grace.
        await asyncio.wait({self._keep(self._runs, self._run(timer, reason))})

    async def _run(self, timer: TimerFunction, reason: str) -> None:
        lock = self._locks[timer.name]
        if lock.locked():
            log.info("Functions.%s: %s waits for the run in progress", timer.name, reason)
        async with lock:
            if self._stopping:
                return
            await self._invoke(timer, reason)

    async def _invoke(self, timer: TimerFunction, reason: str) -> None:
        context = InvocationContext(timer.name, self._directory)
        started = time.monotonic()

        def line(outcome: str) -> tuple[Any, ...]:
            elapsed_ms = (time.monotonic() - started) * 1000
            return (timer.name, outcome, context.invocation_id, elapsed_ms, reason)

        template = "Executed 'Functions.%s' (%s, Id=%s, Duration=%.0fms) %s"
        try:
            await invoke_timer(timer, context, self._executor)
        except Exception:
            # Like the host: a failed run is logged and the schedule goes on (timer runs are not retried).
            log.exception(template, *line("Failed"))
            return
        log.info(template, *line("Succeeded"))
