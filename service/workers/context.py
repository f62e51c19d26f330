"""What every worker needs, built once per process."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from service.clock import utcnow
from service.provider.client import ModelsLabClient
from service.settings import Settings
from service.store.manager import Store

RELEASE = {"lease_owner": None, "lease_expires_at": None}  # values that hand a claim back


def new_owner(role: str) -> str:
    return f"{role}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class WorkContext:
    settings: Settings
    store: Store
    provider: ModelsLabClient
    webhook_secret: str
    clock: Callable[[], datetime] = field(default=utcnow)

    def lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_seconds)
