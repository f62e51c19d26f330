"""Query and path parameters, parsed strictly: ASCII digits within bounds, text matching
the API document's own pattern, ids of our own shape. Anything else is a 422 (or, for a job id, a 404) before any
query runs."""

from __future__ import annotations

import re
from collections.abc import Mapping

from service.api.problems import Problem

_DIGITS = re.compile(r"[0-9]{1,18}")  # never str.isdigit(): it takes "²", which int() refuses
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
CLIENT_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")  # any name `keys create` took; no controls
SEARCH = re.compile(r"[ -~]{1,200}")  # printable ASCII: ids, and any Idempotency-Key


def invalid(field: str, message: str, type_: str = "value") -> Problem:
    return Problem(
        422,
        "Invalid request",
        "Invalid query parameters.",
        type_="validation",
        errors=[{"field": field, "message": message, "type": type_}],
    )


def ascii_int(text: str) -> int | None:
    """The value of 1 to 18 ASCII digits, else None."""
    return int(text) if _DIGITS.fullmatch(text) else None


def int_param(params: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    value = ascii_int(raw)
    if value is None or not low <= value <= high:
        raise invalid(name, f"must be an integer from {low} to {high}", "range")
    return value


def is_job_id(text: str) -> bool:
    """Could this be one of our public job ids? (Keeps NUL and odd text out of queries.)"""
    return _JOB_ID.fullmatch(text) is not None


def pattern_param(params: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str | None:
    """The parameter if it matches `pattern` whole (the API document's own pattern)."""
    raw = params.get(name)
    if raw is None:
        return None
    if not pattern.fullmatch(raw):
        raise invalid(name, f"must match {pattern.pattern}", "pattern")
    return raw
