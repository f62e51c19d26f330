"""How jobs and events look on the wire (the views live in the domain: callbacks send
them too), and the list cursor."""

from __future__ import annotations

import base64
import binascii

from service.api.problems import Problem
from service.domain.views import event_json, job_json, rfc3339

__all__ = ["decode_cursor", "encode_cursor", "event_json", "job_json", "rfc3339"]


def encode_cursor(job_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    kind, _, value = raw.partition(":")
    if kind != "id" or not value.isdigit():
        raise Problem(
            422,
            "Invalid request",
            "The cursor is not one this API gave out.",
            type_="validation",
            errors=[{"field": "cursor", "message": "invalid cursor", "type": "cursor"}],
        )
    return int(value)
