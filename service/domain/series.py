"""The series ops chart, shaped from per-minute rows: one point per step of a window, every
step present (zeros where nothing happened), quantiles from merged histogram buckets.
Pure code: `now` is passed in."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from service.domain.states import TERMINAL, in_order

# window → (step seconds, points)
WINDOWS = {"1h": (60, 60), "24h": (900, 96), "7d": (3600, 168)}
FINISHED = in_order(TERMINAL)
CALLBACK_OUTCOMES = ("delivered", "failing", "dead")
# Series that are levels, not counts (the archive backlog each flush saw): a step keeps the
# highest of its minutes, where a count adds them up.
PEAKS = frozenset({"archive_backlog"})

Row = tuple[datetime, str, str, float]  # (minute, series, label, n)


def since(now: datetime, window: str) -> datetime:
    step, points = WINDOWS[window]
    epoch = int(now.timestamp())
    start = epoch - epoch % step - (points - 1) * step
    return datetime.fromtimestamp(start, now.tzinfo)


def quantile(q: float, buckets: Iterable[tuple[str, float]]) -> float | None:
    """The q-quantile of a histogram given as (upper bound, cumulative count) pairs, by
    linear interpolation inside the bucket (as Prometheus' histogram_quantile); None when
    empty. A rank in the +Inf bucket answers the highest finite bound."""
    ordered = sorted(
        ((math.inf if le == "+Inf" else float(le), n) for le, n in buckets), key=lambda b: b[0]
    )
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for i, (upper, count) in enumerate(ordered):
        if count >= rank:
            if math.isinf(upper):
                return lower
            if i == 0 and upper <= 0:  # no lower bound below the first bucket
                return upper
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower


def points(rows: Iterable[Row], now: datetime, window: str) -> list[dict[str, Any]]:
    step, count = WINDOWS[window]
    start = since(now, window)
    steps: list[dict[tuple[str, str], float]] = [{} for _ in range(count)]
    for minute, series, label, n in rows:
        i = int((minute - start).total_seconds() // step)
        if 0 <= i < count:
            key = (series, label)
            if series in PEAKS:
                steps[i][key] = max(steps[i].get(key, 0.0), n)
            else:
                steps[i][key] = steps[i].get(key, 0.0) + n
    return [_point(start + timedelta(seconds=i * step), s) for i, s in enumerate(steps)]


def _point(at: datetime, s: dict[tuple[str, str], float]) -> dict[str, Any]:
    def n(series: str, label: str = "") -> int:
        return int(round(s.get((series, label), 0.0)))

    webhook, poll = n("results", "webhook"), n("results", "poll")
    errors = {
        label: int(v) for (series, label), v in sorted(s.items()) if series == "provider_errors"
    }
    lateness = [(label, v) for (series, label), v in s.items() if series == "lateness_le"]
    to_result = [(label, v) for (series, label), v in s.items() if series == "to_result_le"]
    not_stored = sum(
        v for (series, label), v in s.items() if series == "archived" and label != "stored"
    )
    backlog = s.get(("archive_backlog", ""))
    return {
        "at": at.isoformat().replace("+00:00", "Z"),
        "created": n("created"),
        "finished": {state: n("finished", state) for state in FINISHED},
        "results": {"webhook": webhook, "poll": poll},
        "webhook_share": round(webhook / (webhook + poll), 4) if webhook + poll else None,
        "provider_errors": errors,
        "rate_limited": errors.get("rate_limited", 0),
        "callbacks": {outcome: n("callbacks", outcome) for outcome in CALLBACK_OUTCOMES},
        "lateness_p50_seconds": quantile(0.5, lateness),
        "lateness_p95_seconds": quantile(0.95, lateness),
        "to_result_p50_seconds": quantile(0.5, to_result),
        "to_result_p95_seconds": quantile(0.95, to_result),
        "archived": {"stored": n("archived", "stored"), "not_stored": int(round(not_stored))},
        "archive_backlog": None if backlog is None else int(backlog),
    }
