"""What every worker needs, built once per process."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from service.clock import utcnow
from service.domain.changes import Policy
from service.provider.client import ModelsLabClient
from service.settings import Settings
from service.store import Store


def new_owner(role: str) -> str:
    return f"{role}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class WorkContext:
    settings: Settings
    store: Store
    provider: ModelsLabClient
    webhook_secret: str
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def policy(self) -> Policy:
        return self.settings.policy

    def lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_seconds)
