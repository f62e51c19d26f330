"""How jobs and events look on the wire (the views live in the domain: callbacks send
them too), and the list cursor."""

from __future__ import annotations

import base64
import binascii

from service.api.params import ascii_int, invalid
from service.domain.views import event_json, job_json, rfc3339

__all__ = ["decode_cursor", "encode_cursor", "event_json", "job_json", "rfc3339"]


def encode_cursor(row_id: int) -> str:
    """An opaque cursor naming a row id (a job's for lists, an event's for histories)."""
    return base64.urlsafe_b64encode(f"id:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    raw = ""
    if len(cursor) <= 64 and cursor.isascii():
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raw = ""
    kind, _, value = raw.partition(":")
    row_id = ascii_int(value) if kind == "id" else None
    if row_id is None:
        raise invalid("cursor", "not a cursor this API gave out", "cursor")
    return row_id
