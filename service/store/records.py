"""The records `Store` hands out and takes: plain dataclasses and row mappers."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row

from service.domain.jobs import Event, Job
from service.domain.requests import JobRequest
from service.domain.states import JobStatus

D = TypeVar("D")


@dataclass(frozen=True)
class Applied:
    job: Job | None  # the row after the change, or as found when nothing changed
    changed: bool
    expired: bool = False  # a webhook whose token's job finished too long ago: refused


@dataclass(frozen=True)
class Principal:
    key_id: int
    client_id: int
    client_name: str
    scopes: frozenset[str]
    default_callback_url: str | None = None
    key_prefix: str = ""  # the key's display prefix: who acted, in a job's events


@dataclass(frozen=True)
class Delivery:
    """One callback event (outbox row) and where it stands."""

    id: int
    job_id: int
    client_id: int
    webhook_id: str
    event_type: str
    url: str
    body: str | None  # built at the first delivery from the terminal job
    status: str
    attempts: int
    schedule_step: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    lease_owner: str | None


@dataclass(frozen=True)
class ClientSecrets:
    current: str
    previous: str | None
    previous_expires_at: datetime | None


def delivery_from_row(row: Row[Any]) -> Delivery:
    return from_mapping(Delivery, row._mapping)


@dataclass(frozen=True)
class KeyInfo:
    prefix: str
    client_name: str
    scopes: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def request_hash(request: JobRequest) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_from_row(row: Row[Any]) -> Job:
    return job_from_mapping(row._mapping)


def job_from_mapping(m: Any) -> Job:
    """From a SQLAlchemy row mapping or an asyncpg Record."""
    return from_mapping(
        Job,
        m,
        status=JobStatus(m["status"]),
        output=list(m["output"] or []),
        metadata=m["metadata"] or {},
    )


def event_from_row(row: Row[Any]) -> Event:
    m = row._mapping
    return from_mapping(Event, m, detail=m["detail"] or {})


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def from_mapping(cls: type[D], m: Any, **converted: Any) -> D:
    """The dataclass `cls` from a row whose columns are named like its fields (a
    SQLAlchemy mapping or an asyncpg Record); `converted` gives the values that need more
    than reading."""
    values = {n: m[n] for n in _field_names(cls) if n not in converted}
    return cls(**values, **converted)


@dataclass(frozen=True)
class Created:
    job: Job


@dataclass(frozen=True)
class Replayed:
    """The Idempotency-Key named this job, created from the same body."""

    job: Job


@dataclass(frozen=True)
class KeyReused:
    """The Idempotency-Key was used within 24 hours with another body."""


@dataclass(frozen=True)
class RateLimited:
    retry_after_seconds: float


@dataclass(frozen=True)
class AtCap:
    """The client already has as many unfinished jobs as it may."""


CreateResult = Created | Replayed | KeyReused | RateLimited | AtCap


@dataclass(frozen=True)
class CreationLimits:
    per_minute: int
    max_unfinished: int
    window_seconds: int = 60


def aware(value: datetime | str, like: datetime) -> datetime:
    """Aggregates (min) bypass the column type on SQLite and come back naive or as text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=like.tzinfo)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None without data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(pct * len(ordered) / 100) - 1, 0)
    return round(ordered[min(rank, len(ordered) - 1)], 3)
