"""How jobs and events look on the wire (the views live in the domain: callbacks send
them too), and the list cursors: a row's id in decimal (a job's for lists, an event's for
histories), which the API document describes exactly."""

from __future__ import annotations

from service.api.params import ascii_int, invalid
from service.domain.views import event_json, job_json, rfc3339

__all__ = ["decode_cursor", "encode_cursor", "event_json", "job_json", "rfc3339"]


def encode_cursor(row_id: int) -> str:
    return str(row_id)


def decode_cursor(cursor: str) -> int:
    row_id = ascii_int(cursor)
    if row_id is None:
        raise invalid("cursor", "not a cursor this API gave out", "cursor")
    return row_id
