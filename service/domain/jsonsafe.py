"""Strict JSON: only values every store and every reader can hold, refused before anything is
stored. No NaN or Infinity, no number that overflows, no integer longer than an int64, no
lone surrogate or NUL character in a string or key, and bounded nesting."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_INT_DIGITS = 19  # 2**63 - 1 has 19 digits
INT64 = 2**63 - 1
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


class UnsafeJson(ValueError):
    """The text is not JSON we accept; `field` names where, when known."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _constant(name: str) -> Any:
    raise UnsafeJson(f"{name} is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise UnsafeJson(f"an integer has more than {MAX_INT_DIGITS} digits")
    value = int(text)
    if abs(value) > INT64:
        raise UnsafeJson("an integer is outside the 64-bit range")
    return value


def _float(text: str) -> float:
    if len(text) > 64:
        raise UnsafeJson("a number is written with more than 64 characters")
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJson("a number is out of range")
    return value


def _path(parent: str, part: str | int) -> str:
    if parent == "body":
        return str(part)
    return f"{parent}.{part}"


def check_value(value: Any, field: str = "body", depth: int = 0) -> None:
    """Raise UnsafeJson if `value` (parsed JSON, or anything built of dicts, lists and
    scalars) holds something we do not store."""
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        raise UnsafeJson(f"nested more than {MAX_DEPTH} levels deep", field)
    if isinstance(value, str):
        if _BAD_CHARS.search(value):
            raise UnsafeJson("a string holds a NUL character or a lone surrogate", field)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > INT64:
            raise UnsafeJson("an integer is outside the 64-bit range", field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeJson("a number is out of range", field)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or _BAD_CHARS.search(key):
                raise UnsafeJson("a key holds a NUL character or a lone surrogate", field)
            check_value(item, _path(field, key[:64]), depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_value(item, _path(field, index), depth + 1)
    else:
        raise UnsafeJson(f"{type(value).__name__} is not a JSON value", field)


def loads(data: bytes | str) -> Any:
    """Parse JSON strictly; raises UnsafeJson (any refusal) or ValueError (not JSON)."""
    try:
        value = json.loads(data, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except RecursionError:
        raise UnsafeJson(f"nested more than {MAX_DEPTH} levels deep") from None
    check_value(value)
    return value
