"""What handlers reach through `request.app.state.ctx`, set up by the app's lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request

from service.domain.wakeups import Wake
from service.runtime.services import Runtime, Wakes
from service.runtime.watchers import Watchers
from service.settings import Settings
from service.store import Store
from service.store.changes import Applied
from service.store.objects import StoreHealth


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    runtime: Runtime
    workers: Wakes | None  # this process's workers, when it runs them
    watchers: Watchers
    metrics_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    metrics_refreshed_at: float = float("-inf")
    output_store: StoreHealth | None = None  # readiness of OUTPUT_STORE, when outputs are kept

    def wake(self, cause: Wake) -> None:
        """Start this process's workers on `cause` now (other replicas hear the NOTIFY)."""
        if self.workers is not None:
            self.workers.wake(cause)

    def finished(self, applied: Applied) -> None:
        """A change that may have ended a job: a provider slot and a callback to wake."""
        if self.workers is not None:
            self.workers.finished(applied)


def ctx_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
