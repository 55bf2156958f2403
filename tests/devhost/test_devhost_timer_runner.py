"""The timer runner in process: the host's schedule rules, failures, and stopping with runs in progress."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from devhost.indexing import TimerFunction
from devhost.schedules import IntervalSchedule
from devhost.timers import TimerRunner


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=2)
    yield pool
    pool.shutdown(wait=True)


class Recorder:
    """A timer function that records when each run starts and ends, taking `seconds` per run."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.cancelled = 0

    async def run(self, timer: Any) -> None:
        loop = asyncio.get_running_loop()
        self.starts.append(loop.time())
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.ends.append(loop.time())
        if self.fail:
            raise RuntimeError("failing on purpose")


def timer(work: Recorder, every_s: float = 3600.0, run_on_startup: bool = False) -> TimerFunction:
    return TimerFunction(
        name="job",
        schedule_expression="test",
        schedule=IntervalSchedule("test", timedelta(seconds=every_s)),
        run_on_startup=run_on_startup,
        user_function=work.run,
        trigger_arg="timer",
        context_arg=None,
    )


async def wait_for(condition: Callable[[], bool], what: str, within_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_run_lasting_past_the_next_occurrence_is_followed_at_once(executor: ThreadPoolExecutor) -> None:
    work = Recorder(seconds=0.6)
    runner = TimerRunner([timer(work, every_s=0.3)], executor, ".")
    runner.start()
    await wait_for(lambda: len(work.starts) >= 2, "two runs")
    await runner.stop(grace_s=5)
    # The next occurrence is counted from when the last one was due, so it is already past: no wait.
    assert work.starts[1] - work.ends[0] < 0.2


async def test_runs_on_schedule_and_on_demand_do_not_overlap(executor: ThreadPoolExecutor) -> None:
    work = Recorder(seconds=0.2)
    function = timer(work, every_s=0.1)
    runner = TimerRunner([function], executor, ".")
    runner.start()
    runner.run_now(function, "on demand")
    await wait_for(lambda: len(work.ends) >= 4, "four runs")
    await runner.stop(grace_s=5)
    assert all(start >= end for start, end in zip(work.starts[1:], work.ends, strict=False))


async def test_failing_run_does_not_stop_the_schedule(executor: ThreadPoolExecutor) -> None:
    work = Recorder(fail=True)
    runner = TimerRunner([timer(work, every_s=0.05)], executor, ".")
    runner.start()
    await wait_for(lambda: len(work.starts) >= 3, "three runs after failures")
    await runner.stop(grace_s=5)


async def test_run_on_startup_runs_before_the_first_occurrence(executor: ThreadPoolExecutor) -> None:
    work = Recorder()
    runner = TimerRunner([timer(work, run_on_startup=True)], executor, ".")
    runner.start()
    await wait_for(lambda: len(work.ends) == 1, "the run on startup")
    await runner.stop(grace_s=5)


async def test_stop_lets_a_run_in_progress_end(executor: ThreadPoolExecutor) -> None:
    work = Recorder(seconds=0.3)
    function = timer(work)
    runner = TimerRunner([function], executor, ".")
    runner.run_now(function, "on demand")
    await wait_for(lambda: len(work.starts) == 1, "the run to start")
    await runner.stop(grace_s=5)
    assert (len(work.ends), work.cancelled) == (1, 0)


async def test_stop_cancels_a_run_that_outlasts_the_grace(executor: ThreadPoolExecutor) -> None:
    work = Recorder(seconds=60)
    function = timer(work)
    runner = TimerRunner([function], executor, ".")
    runner.run_now(function, "on demand")
    await wait_for(lambda: len(work.starts) == 1, "the run to start")
    await asyncio.wait_for(runner.stop(grace_s=0.1), timeout=5)
    assert work.cancelled == 1


async def test_run_waiting_for_its_turn_does_not_start_once_stopping(executor: ThreadPoolExecutor) -> None:
    work = Recorder(seconds=0.3)
    function = timer(work)
    runner = TimerRunner([function], executor, ".")
    runner.run_now(function, "first")
    runner.run_now(function, "second")
    await wait_for(lambda: len(work.starts) == 1, "the first run to start")
    await runner.stop(grace_s=5)
    assert (len(work.starts), len(work.ends)) == (1, 1)
