"""A token bucket: the sweeper's poll rate budget, so that after an outage it does not
call the provider for every overdue job at once."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateBudget:
    def __init__(
        self,
        per_second: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_second
        self.capacity = burst if burst is not None else max(per_second, 1.0)
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def available(self) -> int:
        self._refill()
        return int(self._tokens)

    def spend(self, n: int) -> None:
        self._refill()
        self._tokens -= n

    def seconds_until_one(self) -> float:
        self._refill()
        return max((1.0 - self._tokens) / self.rate, 0.0)
