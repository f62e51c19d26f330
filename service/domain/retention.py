"""How long finished jobs are kept."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MIN_AGE = timedelta(days=1)  # an Idempotency-Key lives 24 hours; its job must outlive it


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `3600s`, `2w` → a timedelta of at least one day."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not an age like 30d, 12h or 2w")
    age = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if age < MIN_AGE:
        raise ValueError("keep finished jobs at least one day")
    return age


def prune_cutoff(now: datetime, age: timedelta) -> datetime:
    return now - age
