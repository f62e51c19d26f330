"""Keep secrets out of stored events, logs and error bodies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset({"key", "api_key", "apikey", "authorization", "webhook"})


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of `value` with fields that hold credentials, and any occurrence of the given
    secret strings, replaced by "[redacted]"."""
    needles = [s for s in secrets if s and len(s) >= 8]

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {
                k: REDACTED if str(k).lower() in SECRET_FIELDS and v[k] else walk(v[k]) for k in v
            }
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            for needle in needles:
                if needle in v:
                    v = v.replace(needle, REDACTED)
            return v
        return v

    return walk(value)
