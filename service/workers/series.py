"""Flush this process's counts into the per-minute series every few seconds (and once more
on the way out); keep eight days of minutes. One short transaction per flush, whatever the
load: the hot paths only bump their Prometheus counters, as before."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from service import rollup
from service.store import Store
from service.store.health import report_failure

log = logging.getLogger("service.series")

KEEP = timedelta(days=8)


def minute_of(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


class SeriesFlusher:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        interval_seconds: float = 10.0,
        archive: bool = False,
    ) -> None:
        self.store = store
        self.archive = archive  # OUTPUT_STORE is on: record the archive backlog too
        self.clock = clock
        self.interval = interval_seconds
        self._last = rollup.snapshot()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._forgot_at: datetime | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="series")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):  # the database may be away: the counts are lost
            await self.flush()

    async def flush(self) -> None:
        """Add what grew since the last flush to the current minute. Counts that fail to
        reach the database are kept for the next flush."""
        now = self.clock()
        current = rollup.snapshot()
        grown = rollup.deltas(self._last, current)
        generations = dict(rollup.GENERATIONS)
        levels = (
            {("archive_backlog", ""): float(await self.store.archives.pending())}
            if self.archive
            else None
        )
        await self.store.series.add(minute_of(now), grown, now.date(), generations, levels)
        self._last = current
        rollup.GENERATIONS.subtract(generations)
        rollup.GENERATIONS += Counter()  # drops the zeros
        if self._forgot_at is None or now - self._forgot_at > timedelta(hours=1):
            await self.store.series.forget_minutes(now - KEEP)
            self._forgot_at = now

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            if self._stopping.is_set():
                return
            try:
                await self.flush()
            except Exception:
                report_failure("series flush", log)
