"""schemathesis hooks for the `st run` of test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key used again with another body is a client error by contract (422), and
the fuzzer draws keys from a small space ("0", "00", …), so two generated requests often
share one. Each valid key it generates gets a suffix unique to the request (still valid);
what the key means is tested in tests/api/test_jobs.py, not left to collisions here.

A wait the fuzzer asks for (`?wait=N`, `Prefer: wait=N`, N up to 60) is held for up to N
seconds by design, past schemathesis's 10-second response-time check: each valid one is
cut to 1 second. How long a wait holds is tested in tests/e2e/test_waiting.py."""

from __future__ import annotations

import itertools
import re
from typing import Any

import schemathesis

_VALID = re.compile(r"[!-~](?:[ -~]{0,198}[!-~])?")
_WAIT = re.compile(r"[0-9]{1,2}")
_count = itertools.count()


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _VALID.fullmatch(key) and len(key) <= 180:
        headers["Idempotency-Key"] = f"{key}-{next(_count)}"
    prefer = headers.get("Prefer")
    if isinstance(prefer, str) and prefer.startswith("wait=") and _long(prefer[5:]):
        headers["Prefer"] = "wait=1"
    query = case.query or {}
    if _long(query.get("wait")):
        query["wait"] = 1


def _long(wait: Any) -> bool:
    """A valid wait (a whole number of seconds up to 60) longer than one second; invalid
    ones stay as they are, for the checks that they are refused."""
    if isinstance(wait, str) and _WAIT.fullmatch(wait):
        wait = int(wait)
    return type(wait) is int and 1 < wait <= 60
