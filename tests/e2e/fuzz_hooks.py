"""schemathesis hooks for the `st run` of test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key used again with another body is a client error by contract (422), and
the fuzzer draws keys from a small space ("0", "00", …), so two generated requests often
share one. Each valid key it generates gets a suffix unique to the request (still valid);
what the key means is tested in tests/api/test_jobs.py, not left to collisions here."""

from __future__ import annotations

import itertools
import re
from typing import Any

import schemathesis

_VALID = re.compile(r"[!-~](?:[ -~]{0,198}[!-~])?")
_count = itertools.count()


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _VALID.fullmatch(key) and len(key) <= 180:
        headers["Idempotency-Key"] = f"{key}-{next(_count)}"
