"""What handlers reach through `request.app.state.ctx`, set up by the app's lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request

from service.settings import Settings
from service.store.manager import Store
from service.workers.context import WorkContext
from service.workers.runner import Workers


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    work: WorkContext
    workers: Workers | None
    metrics_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    metrics_refreshed_at: float = float("-inf")

    def wake_submitter(self) -> None:
        if self.workers is not None:
            self.workers.wake()


def ctx_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
