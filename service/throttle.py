"""Saying a repeated failure once per interval: the first of a kind is logged at once, the
rest only counted, and the count rides on the next line of that kind (a flood of one kind
is a few lines, however it interleaves with others)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Throttled:
    logger: logging.Logger
    interval: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _last: dict[str, float] = field(default_factory=dict)
    _since: dict[str, int] = field(default_factory=dict)

    def note(self, kind: str, message: str, *args: object) -> None:
        """One more of `kind`; logged (`message % args`, with the count since the last line
        of its kind) when none was in the last `interval` seconds."""
        self._since[kind] = self._since.get(kind, 0) + 1
        now = self.clock()
        last = self._last.get(kind)
        if last is None or now - last >= self.interval:
            self._last[kind] = now
            count = self._since.pop(kind)
            self.logger.warning(message + ": %d since the last such line", *args, count)
