"""Start and stop the background loops; each survives any error of one job or one claim."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from service import logs
from service.domain import delivery
from service.domain.circuit import State as CircuitState
from service.domain.jobs import Job
from service.domain.retention import prune_cutoff
from service.domain.states import TERMINAL
from service.domain.wakeups import Wake
from service.runtime.polling import poll_job
from service.runtime.services import Runtime, new_owner
from service.store.archives import ArchiveTask
from service.store.changes import Applied
from service.store.health import report_failure
from service.store.listener import Listener
from service.store.queries import WAKE_CHANNEL
from service.store.records import Delivery
from service.workers import retention
from service.workers.archiver import StoreGate, archive_job
from service.workers.budget import RateBudget
from service.workers.notifier import deliver
from service.workers.submitter import submit_job

log = logging.getLogger("service.workers")

MIN_IDLE_SECONDS = 0.02  # a loop woken for an item just due still yields
BUSY_IDLE_SECONDS = 0.5  # an item due but not claimable (another worker holds it)

T = TypeVar("T", Job, Delivery, ArchiveTask)


@dataclass
class Loop(Generic[T]):
    """One background loop: claim up to `capacity` items, handle each in its own task,
    and idle `idle_seconds` (or until `wake` is set) when there is nothing to do."""

    name: str
    claim: Callable[[int], Awaitable[Sequence[T]]]
    handle: Callable[[T], Awaitable[object]]
    capacity: int
    idle_seconds: float
    wake: asyncio.Event | None = None
    budget: RateBudget | None = None
    calls_provider: bool = False  # claims wait on the provider's circuit
    gate: Callable[[], Awaitable[bool]] | None = None  # may it claim now? (the output store)
    next_due: Callable[[], Awaitable[float | None]] | None = None  # seconds to the next item


def _log_ids(item: Job | Delivery | ArchiveTask) -> tuple[str | None, int | None, str]:
    """(job public id, track id, a name for the log) of a claimed item."""
    if isinstance(item, Job):
        return item.public_id, item.id, item.public_id
    if isinstance(item, ArchiveTask):
        return None, item.job_id, f"archive of job {item.job_id}"
    return None, item.job_id, item.webhook_id


class Workers:
    """The submitter, the sweeper, the notifier and retention of one process. `wake(cause)`
    is the in-process signal (and what a NOTIFY from another replica turns into), so work
    starts without waiting for the next idle tick."""

    def __init__(self, ctx: Runtime) -> None:
        self.ctx = ctx
        self.owner = new_owner("worker")
        self._stopping = asyncio.Event()
        self._wake_submitter = asyncio.Event()
        self._wake_notifier = asyncio.Event()
        self._wake_sweeper = asyncio.Event()
        self._wake_archiver = asyncio.Event()
        self.objects = ctx.objects
        self._circuit_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.poll_budget = RateBudget(ctx.settings.poll_rate_per_second)
        self._listener: Listener | None = None

    @property
    def alive(self) -> bool:
        """Every loop still running (for the liveness probe)."""
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    def wake(self, cause: Wake | None = None) -> None:
        """Start the work `cause` calls for now (None: everything)."""
        if cause in (None, Wake.JOB_CREATED, Wake.SLOT_FREED):
            self._wake_submitter.set()
        if cause in (None, Wake.CALLBACK_DUE):
            self._wake_notifier.set()
        if cause in (None, Wake.ARCHIVE_DUE):
            self._wake_archiver.set()

    def _heard(self, payload: str | None) -> None:
        """A NOTIFY from any replica: the cause it names (None, or unknown: everything)."""
        try:
            cause: Wake | None = Wake(payload) if payload is not None else None
        except ValueError:
            cause = None
        self.wake(cause)

    async def _follow_circuit(self) -> None:
        """The provider came back: what waited on it (queued submits, polls that failed in
        the outage) goes now, at the poll budget's pace. Its state is kept for /v1/stats."""
        while True:
            state = await self.ctx.provider.circuit_change()
            if state is CircuitState.CLOSED:
                log.warning("provider reachable again: submitting and polling resume")
                self._wake_submitter.set()
                self._wake_sweeper.set()
            elif state is CircuitState.OPEN:
                log.warning(
                    "provider unreachable: submitting and polling pause (one probe at a time)"
                )
            with contextlib.suppress(Exception):  # the database may be away too; the next change
                await self.ctx.store.stats.record_circuit(state.value, self.ctx.clock())

    def finished(self, applied: Applied) -> None:
        """A change that ended a job frees a provider slot, and may have queued a callback."""
        job = applied.job
        if applied.changed and job is not None and job.status in TERMINAL:
            self.wake(Wake.SLOT_FREED)
            if job.callback_url:
                self.wake(Wake.CALLBACK_DUE)
            if job.archive_status is not None:
                self.wake(Wake.ARCHIVE_DUE)

    async def start(self) -> None:
        s = self.ctx.settings
        if not s.is_sqlite:
            self._listener = Listener(s.database_url, {WAKE_CHANNEL: self._heard})
            self._listener.start()
        submitter: Loop[Job] = Loop(
            "submitter",
            self._claim_submit,
            lambda job: submit_job(self.ctx, job, self.owner),
            s.submit_concurrency,
            s.submit_idle_seconds,
            self._wake_submitter,
            calls_provider=True,
        )
        notifier: Loop[Delivery] = Loop(
            "notifier",
            self._claim_callbacks,
            lambda d: deliver(self.ctx, d, self.owner),
            s.callback_concurrency,
            s.submit_idle_seconds,
            self._wake_notifier,
        )
        sweeper: Loop[Job] = Loop(
            "sweeper",
            self._claim_poll,
            self._poll,
            s.poll_concurrency,
            s.sweep_interval_seconds,
            self._wake_sweeper,
            budget=self.poll_budget,
            calls_provider=True,
            next_due=self._next_poll_in,
        )
        if self.objects is not None:
            objects, gate = self.objects, StoreGate(self.objects)
            archiver: Loop[ArchiveTask] = Loop(
                "archiver",
                self._claim_archives,
                lambda task: archive_job(self.ctx, objects, task, self.owner, gate),
                s.output_archive_concurrency,
                s.submit_idle_seconds,
                self._wake_archiver,
                gate=gate.open,
            )
            self._tasks.append(asyncio.create_task(self._run(archiver), name="archiver"))
        self._tasks += [
            asyncio.create_task(self._run(submitter), name="submitter"),
            asyncio.create_task(self._retention(), name="retention"),
            asyncio.create_task(self._run(notifier), name="notifier"),
            asyncio.create_task(self._run(sweeper), name="sweeper"),
            asyncio.create_task(self._watch_webhooks(), name="webhook-watch"),
        ]
        self._circuit_task = asyncio.create_task(self._follow_circuit(), name="circuit")
        log.info("workers started as %s", self.owner)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, let in-flight calls finish (up to STOP_GRACE_SECONDS), hand back
        the poll claims; a submit still in flight keeps its claim (see README)."""
        if timeout is None:
            timeout = self.ctx.settings.stop_grace_seconds
        self._stopping.set()
        self._wake_submitter.set()
        if self._circuit_task is not None:
            self._circuit_task.cancel()
        if self._listener is not None:
            await self._listener.stop()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.ctx.store.changes.release_claims(self.owner)
        except Exception:
            report_failure(f"releasing the claims of {self.owner}", log)
        log.info("workers stopped")

    async def _retention(self) -> None:
        """Prune finished jobs past RETENTION_DAYS, once an interval; the store's lock lets
        one replica at a time do it."""
        s = self.ctx.settings
        if not s.retention_days:
            return
        age = timedelta(days=s.retention_days)
        while not self._stopping.is_set():
            try:
                cutoff = prune_cutoff(self.ctx.clock(), age)
                deleted = await retention.prune(self.ctx.store, self.objects, cutoff)
                if deleted:
                    log.info("retention: deleted %d finished jobs", deleted)
            except Exception:
                report_failure("retention", log)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), s.retention_interval_seconds)

    async def _claim_callbacks(self, limit: int) -> list[Delivery]:
        now = self.ctx.clock()
        lease = now + timedelta(seconds=self.ctx.settings.callback_lease_seconds)
        return await self.ctx.store.callbacks.claim_deliveries(now, self.owner, lease, limit)

    async def _claim_archives(self, limit: int) -> list[ArchiveTask]:
        now = self.ctx.clock()
        lease = now + timedelta(seconds=self.ctx.settings.lease_seconds)
        return await self.ctx.store.archives.claim_archives(now, self.owner, lease, limit)

    async def _claim_submit(self, limit: int) -> list[Job]:
        now = self.ctx.clock()
        return await self.ctx.store.jobs.claim_for_submit(
            now,
            self.owner,
            self.ctx.lease_until(now),
            limit,
            max_inflight=self.ctx.settings.provider_max_inflight,
        )

    async def _claim_poll(self, limit: int) -> list[Job]:
        now = self.ctx.clock()
        return await self.ctx.store.jobs.claim_for_poll(
            now, self.owner, self.ctx.lease_until(now), limit
        )

    async def _next_poll_in(self) -> float | None:
        due = await self.ctx.store.jobs.next_poll_due()
        return None if due is None else (due - self.ctx.clock()).total_seconds()

    async def _watch_webhooks(self) -> None:
        """Every SERIES_FLUSH_SECONDS: have results come by poll only lately (every process's,
        from the series)? Then first polls go at each job's eta, not eta + grace; said once each
        way."""
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):  # the database away: as it was
                now = self.ctx.clock()
                since = now - timedelta(seconds=delivery.WINDOW_SECONDS)
                came = await self.ctx.store.series.results_since(since)
                lost = delivery.webhooks_lost(came.get("webhook", 0.0), came.get("poll", 0.0))
                if lost != self.ctx.webhooks_lost:
                    self.ctx.webhooks_lost = lost
                    if lost:
                        log.warning(
                            "webhooks look lost: the last %d results came by poll, none by "
                            "webhook; first polls now go at each job's eta, not eta + grace",
                            int(came.get("poll", 0.0)),
                        )
                    else:
                        log.warning("webhooks arrive again: first polls back at eta + grace")
            with contextlib.suppress(TimeoutError):  # no sooner than the series changes
                await asyncio.wait_for(
                    self._stopping.wait(), self.ctx.settings.series_flush_seconds
                )

    async def _poll(self, job: Job) -> None:
        self.finished(await poll_job(self.ctx, job, self.owner))

    async def _guard(self, loop: Loop[T], item: T) -> None:
        public_id, track, name = _log_ids(item)
        try:
            with logs.job_context(public_id, track):
                await loop.handle(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            report_failure(f"{loop.name}: {name} (its lease will expire)", log)

    async def _run(self, loop: Loop[T]) -> None:
        name, claim, capacity, budget = loop.name, loop.claim, loop.capacity, loop.budget
        inflight: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                free = capacity - len(inflight)
                if budget is not None and free > 0 and budget.available() < free:
                    free = budget.available()
                    if free <= 0:  # over the rate budget: wait for the next token
                        await self._idle(budget.seconds_until_one(), None, set())
                        continue
                if loop.gate is not None and free > 0 and not await loop.gate():
                    await self._idle(loop.idle_seconds, loop.wake, set())  # it probes again
                    continue
                claimed: Sequence[T] = []
                granted = free
                if loop.calls_provider and free > 0:
                    granted = self.ctx.provider.may_call(free)
                    if granted == 0:  # the provider is away: wait for the probe's turn
                        wait = self.ctx.provider.circuit.seconds_until_probe(time.monotonic())
                        await self._idle(min(max(wait, 0.05), loop.idle_seconds), loop.wake, set())
                        continue
                    free = granted
                if free > 0:
                    try:
                        claimed = await claim(free)
                    except Exception:
                        report_failure(f"{name}: claim", log)
                    if loop.calls_provider:
                        self.ctx.provider.unused(granted, len(claimed))
                    if budget is not None:
                        budget.spend(len(claimed))
                    for item in claimed:
                        task = asyncio.create_task(self._guard(loop, item))
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                if claimed and len(claimed) == free:
                    # Full batch: there may be more; go again once a slot frees.
                    if inflight:
                        await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                idle = loop.idle_seconds
                if loop.next_due is not None and free > 0:  # wake when the next falls due
                    with contextlib.suppress(Exception):  # else the tick, as ever
                        due = await loop.next_due()
                        if due is not None:  # one due but not claimed: held, or the budget
                            idle = min(idle, due if due > 0 else BUSY_IDLE_SECONDS)
                            idle = max(idle, MIN_IDLE_SECONDS)
                await self._idle(idle, loop.wake, inflight if free <= 0 else set())
        finally:
            try:
                if inflight:
                    await asyncio.wait(inflight, timeout=self.ctx.settings.provider_timeout_seconds)
            finally:
                for task in inflight:
                    task.cancel()

    async def _idle(
        self, seconds: float, wake: asyncio.Event | None, inflight: set[asyncio.Task[None]]
    ) -> None:
        waiters: set[asyncio.Task[object]] = {asyncio.create_task(self._stopping.wait())}
        if wake is not None:
            waiters.add(asyncio.create_task(wake.wait()))
        try:
            await asyncio.wait(
                waiters | set(inflight), timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waiters, return_exceptions=True)
        if wake is not None:
            wake.clear()
