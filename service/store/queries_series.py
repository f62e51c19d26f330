"""The series' statements, named (the rest are in `queries.py`): adding a process's
per-minute counts and a day's generations per client, reading a window, forgetting old
minutes. Every read is a primary-key range; none touches jobs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Delete, Insert, Select, delete, func, select

from service.store.queries import add_rows
from service.store.tables import clients, stats_minutes, usage_days

MINUTE_KEY = ("minute", "series", "label")


def _minute_rows(minute: datetime, values: Mapping[tuple[str, str], float]) -> list[Any]:
    return [
        {"minute": minute, "series": series, "label": label, "n": n}
        for (series, label), n in sorted(values.items())
    ]


def add_minute(dialect: str, minute: datetime, counts: Mapping[tuple[str, str], float]) -> Insert:
    """Add each count to (minute, series, label), in one statement (sorted: one lock order)."""
    return add_rows(dialect, stats_minutes, _minute_rows(minute, counts), MINUTE_KEY, "n")


def peak_minute(dialect: str, minute: datetime, levels: Mapping[tuple[str, str], float]) -> Insert:
    """Keep the highest of each level seen in (minute, series, label): every process reports
    the same deployment-wide level (the archive backlog), so adding would count it twice."""
    highest = func.greatest if dialect == "postgresql" else func.max  # SQLite's max(a, b)
    rows = _minute_rows(minute, levels)
    return add_rows(dialect, stats_minutes, rows, MINUTE_KEY, "n", highest)


def add_usage(dialect: str, day: date, generations: Mapping[int, int]) -> Insert:
    rows = [
        {"day": day, "client_id": client_id, "generations": n}
        for client_id, n in sorted(generations.items())
    ]
    return add_rows(dialect, usage_days, rows, ("day", "client_id"), "generations")


def minutes_since(since: datetime) -> Select[Any]:
    m = stats_minutes
    return (
        select(m.c.minute, m.c.series, m.c.label, m.c.n)
        .where(m.c.minute >= since)
        .order_by(m.c.minute)
    )


def usage_since(since: date) -> Select[Any]:
    u = usage_days
    return (
        select(u.c.day, clients.c.name, u.c.generations)
        .join(clients, clients.c.id == u.c.client_id)
        .where(u.c.day >= since)
        .order_by(u.c.day, clients.c.name)
    )


def forget_minutes(before: datetime) -> Delete:
    return delete(stats_minutes).where(stats_minutes.c.minute < before)


def results_since(since: datetime) -> Select[Any]:
    """Provider results by how they came (webhook, poll) since `since`, every process's."""
    m = stats_minutes
    return (
        select(m.c.label, func.sum(m.c.n))
        .where(m.c.minute >= since, m.c.series == "results")
        .group_by(m.c.label)
    )
