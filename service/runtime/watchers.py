"""Waiting on jobs in this process (long-polls and event streams) without polling the
database per waiter: every waiter of a job wakes on one signal, which is a change made in
this process (the store's hook), a NOTIFY from another replica (one LISTEN connection for
the process, PostgreSQL), or the catch-up read of all watched jobs at once that covers what
a signal can miss. Waiters are bounded per process and per client; on shutdown every
waiter wakes and ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from service.runtime.services import new_owner
from service.store import Store
from service.store.listener import Listener
from service.store.queries import WATCH_CHANNEL
from service.store.watching import Mark

log = logging.getLogger("service.watchers")


class TooManyWaiters(Exception):
    """This process, or this client, already has as many waiters as it may."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


@dataclass(eq=False)
class Waiter:
    job_id: int
    client_id: int
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def arm(self) -> None:
        """Before looking at the job: a change from now on ends the next `wait`."""
        self.changed.clear()

    async def wait(self, timeout: float) -> bool:
        """Until the job may have changed (True) or `timeout` seconds pass (False)."""
        if timeout <= 0:
            return self.changed.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)
        return self.changed.is_set()


def _server_exiting() -> bool:
    """Has uvicorn been told to exit (SIGTERM, SIGINT)? It waits for open requests before
    the app's shutdown, so waiters must notice by themselves. sse-starlette's flag is set
    when its patch of uvicorn's handler took; else ask the handler's server (as
    sse-starlette does for servers whose signals were captured before the patch)."""
    from sse_starlette.sse import AppStatus

    if AppStatus.should_exit:
        return True
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))


class Watchers:
    CATCHUP_SECONDS = 1.0
    ROW_SECONDS = 60.0  # a job_watchers row outlives a missed refresh or two

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        *,
        max_waiters: int,
        max_waiters_per_client: int,
        database_url: str | None = None,
    ) -> None:
        """`database_url`: PostgreSQL's, to LISTEN for changes made by other replicas."""
        self.store = store
        self.clock = clock
        self.max_waiters = max_waiters
        self.max_waiters_per_client = max_waiters_per_client
        self.owner = new_owner("watch")
        self.closing = asyncio.Event()
        self._by_job: dict[int, set[Waiter]] = {}
        self._per_client: Counter[int] = Counter()
        self._count = 0
        self._marks: dict[int, Mark] = {}
        self._listener = (
            Listener(database_url, {WATCH_CHANNEL: self._heard}) if database_url else None
        )
        self._task: asyncio.Task[None] | None = None
        store.watching.on_changed.append(self.changed)

    @property
    def waiting(self) -> int:
        return self._count

    def start(self) -> None:
        if self._listener is not None:
            self._listener.start()
        self._task = asyncio.create_task(self._catch_up(), name="watchers")

    async def stop(self) -> None:
        """Wake every waiter to end (each answers what it has), and let go of the rows."""
        self.close()
        if self._listener is not None:
            await self._listener.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # the database may be away; rows expire
            await self.store.watching.unwatch_all(self.owner)

    def close(self) -> None:
        if not self.closing.is_set():
            self.closing.set()
            self._wake_all()

    def changed(self, job_id: int) -> None:
        for waiter in self._by_job.get(job_id, ()):
            waiter.changed.set()

    def _wake_all(self) -> None:
        for waiters in self._by_job.values():
            for waiter in waiters:
                waiter.changed.set()

    def _heard(self, payload: str | None) -> None:
        if payload is None:  # (re)connected: anything may have changed meanwhile
            self._wake_all()
        elif payload.isdigit():
            self.changed(int(payload))

    @contextlib.asynccontextmanager
    async def watch(self, job_id: int, client_id: int) -> AsyncIterator[Waiter]:
        """A waiter on `job_id` for the block's length (`acquire`, then `release`)."""
        waiter = await self.acquire(job_id, client_id)
        try:
            yield waiter
        finally:
            await self.release(waiter)

    async def acquire(self, job_id: int, client_id: int) -> Waiter:
        """A waiter on `job_id`; raises TooManyWaiters past the bounds. Arm it, look at the
        job, then wait: no change in between is missed. `release` it when done."""
        if self._count >= self.max_waiters:
            raise TooManyWaiters("process")
        if self._per_client[client_id] >= self.max_waiters_per_client:
            raise TooManyWaiters("client")
        waiter = Waiter(job_id, client_id)
        first = job_id not in self._by_job
        self._by_job.setdefault(job_id, set()).add(waiter)
        self._per_client[client_id] += 1
        self._count += 1
        if first and self.store.watching.notifies:
            until = self.clock() + timedelta(seconds=self.ROW_SECONDS)
            try:
                await self.store.watching.watch(job_id, self.owner, until)
            except BaseException:
                await self.release(waiter)
                raise
        return waiter

    async def release(self, waiter: Waiter) -> None:
        job_id, client_id = waiter.job_id, waiter.client_id
        waiters = self._by_job.get(job_id)
        if waiters is None or waiter not in waiters:
            return
        waiters.discard(waiter)
        self._count -= 1
        self._per_client[client_id] -= 1
        if not self._per_client[client_id]:
            del self._per_client[client_id]
        if not waiters:
            del self._by_job[job_id]
            self._marks.pop(job_id, None)
            if self.store.watching.notifies and not self.closing.is_set():
                with contextlib.suppress(Exception):  # it expires if this fails
                    await self.store.watching.unwatch(job_id, self.owner)

    async def _catch_up(self) -> None:
        """Once a second: notice the server exiting; read where every watched job stands
        (one query) and wake the waiters of any that moved without a signal reaching us
        (another process on SQLite, a NOTIFY lost in a reconnect, a change that committed
        as our row did); keep our job_watchers rows alive."""
        refreshed = self.clock()
        while not self.closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.CATCHUP_SECONDS)
            if _server_exiting():
                self.close()
            if self.closing.is_set() or not self._by_job:
                continue
            try:
                marks = await self.store.watching.marks(list(self._by_job))
                for job_id, mark in marks.items():
                    if self._marks.get(job_id) != mark:
                        self._marks[job_id] = mark
                        self.changed(job_id)
                now = self.clock()
                if self.store.watching.notifies and now - refreshed > timedelta(
                    seconds=self.ROW_SECONDS / 3
                ):
                    until = now + timedelta(seconds=self.ROW_SECONDS)
                    await self.store.watching.keep_watching(self.owner, until, now)
                    refreshed = now
            except Exception as exc:  # the database away: waiters time out as they would
                log.debug("catch-up read failed: %s", type(exc).__name__)
