"""The services the API and the workers share, built once per process by the composition
root: `Runtime` (settings, clock, store, provider, output store, secrets), and what the API
may ask of the workers running beside it (`Wakes`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from service.clock import utcnow
from service.domain.changes import Change, Policy
from service.domain.jobs import Job
from service.domain.wakeups import Wake
from service.provider.client import ModelsLabClient
from service.settings import Settings
from service.store import Store
from service.store.changes import Applied
from service.store.health import HEALTH, unavailable
from service.store.objects import Objects


class Wakes(Protocol):
    """The workers of this process, as the API reaches them (other replicas hear NOTIFYs)."""

    @property
    def alive(self) -> bool:
        """Every background loop still running (the liveness probe)."""
        ...

    def wake(self, cause: Wake | None = None) -> None:
        """Start the loops that `cause` concerns now, instead of at their next idle tick."""
        ...

    def finished(self, applied: Applied) -> None:
        """A change that may have ended a job: a provider slot, a callback, an archive."""
        ...


def new_owner(role: str) -> str:
    return f"{role}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Runtime:
    settings: Settings
    store: Store
    provider: ModelsLabClient
    webhook_secret: str
    clock: Callable[[], datetime] = field(default=utcnow)
    objects: Objects | None = None  # the output store (OUTPUT_STORE), when outputs are kept
    webhooks_lost: bool = False  # every recent result came by poll (service.domain.delivery)

    @property
    def policy(self) -> Policy:
        return self.settings.policy

    def lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_seconds)

    async def record(self, job: Job, change: Change, now: datetime, owner: str | None) -> Applied:
        """Apply what the provider said (or what was decided about it). The provider's
        answer was paid for: a database that is down for a while must not lose it, so the
        write is retried with backoff for as long as the claim lasts, and the claim is
        extended whenever the database answers again. Only a process that dies leaves the
        job to the crash path (another worker, once the lease runs out)."""
        lease_ends = job.lease_expires_at or self.lease_until(now)
        delay = 0.05
        while True:
            try:
                return await self.store.changes.apply_change(job, change, now, owner)
            except Exception as exc:
                kind = unavailable(exc)
                left = (lease_ends - self.clock()).total_seconds()
                if kind is None or left <= delay + 1.0:
                    raise
                HEALTH.failed(kind, f"recording job {job.public_id}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            if owner is not None:
                with contextlib.suppress(Exception):  # the database may still be away
                    until = self.lease_until(self.clock())
                    if await self.store.jobs.extend_lease(job.id, owner, until):
                        lease_ends = until
