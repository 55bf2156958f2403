"""CPU accounting for one asyncio event loop: which share of the thread's CPU time went to which part.

Every piece of work the loop runs (a task's step, an I/O callback) runs in a `contextvars` context; a part
is named by a context variable (`charged_to`), so a task started inside `with account.charge("storage")`,
and the socket callbacks registered from it, are charged to "storage" too. Time between callbacks (the
loop's own bookkeeping and polling) is charged to "loop".

Installed by wrapping asyncio's `Handle._run` for the benchmark process only: the app itself is unchanged.
It costs about a microsecond per callback, so benchmarks measure throughput without it and use it in a
separate pass.
"""

from __future__ import annotations

import asyncio.events
import contextvars
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LOOP = "loop"
charged_to: contextvars.ContextVar[str] = contextvars.ContextVar("charged_to", default="other")


class CpuAccount:
    """Thread CPU seconds per part, from `install()` until `uninstall()`."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._current = LOOP
        self._mark = time.thread_time()
        self._original: Callable[[asyncio.events.Handle], None] | None = None

    def _switch(self, part: str) -> None:
        now = time.thread_time()
        self.seconds[self._current] += now - self._mark
        self._mark, self._current = now, part

    @contextmanager
    def charge(self, part: str) -> Iterator[None]:
        """Charge the work done inside (and in tasks and callbacks started inside) to `part`."""
        token = charged_to.set(part)
        previous = self._current
        self._switch(part)
        try:
            yield
        finally:
            charged_to.reset(token)
            self._switch(previous)

    def install(self) -> None:
        original = asyncio.events.Handle._run
        self._original = original
        account = self

        def run(handle: asyncio.events.Handle) -> None:
            context: Any = handle._context  # type: ignore[attr-defined]
            account._switch(context.get(charged_to, "other"))
            try:
                original(handle)
            finally:
                account._switch(LOOP)

        asyncio.events.Handle._run = run  # type: ignore[method-assign]
        self._switch(LOOP)

    def uninstall(self) -> None:
        self._switch(LOOP)
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
            self._original = None

    def total(self) -> float:
        return sum(self.seconds.values())
