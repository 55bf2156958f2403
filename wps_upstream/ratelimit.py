"""Flood control: a token bucket per connection, kept in this instance's memory.

Per instance by design: Functions may spread one connection's events over several instances, so the
limit a connection meets is the setting times the number of instances serving it (docs/app.md). Buckets
of connections that went quiet are dropped, so memory stays bounded by `max_tracked`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Up to `rate` events per second per key, with bursts of `burst`; rate 0 turns the limit off."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_tracked: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._max_tracked = max_tracked
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, updated at)

    def allow(self, key: str) -> bool:
        """Take one token for `key`; False when its bucket is empty (the event is over the limit)."""
        if self.rate <= 0:
            return True
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self._max_tracked:
            self._buckets.popitem(last=False)  # the key that has been quiet longest
        return allowed
