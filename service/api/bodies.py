"""Reading request bodies: bounded in size, parsed as JSON, with clear errors."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from service.api.problems import Problem
from service.domain import jsonsafe


def too_large(limit: int) -> Problem:
    return Problem(413, "Payload too large", f"The body is over {limit} bytes.")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit`, without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or ended by the edge for being too slow (service/edge.py)
        raise Problem(408, "Request timeout", "The body did not arrive whole.") from None
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Strict JSON (`service.domain.jsonsafe`): anything the database or a reader could
    choke on is refused here, before it is stored."""
    try:
        return jsonsafe.loads(body)
    except jsonsafe.UnsafeJson as exc:
        raise Problem(
            400,
            "Malformed JSON",
            f"The body holds a value this API does not accept: {exc.message}.",
            type_="malformed-json",
            errors=[{"field": exc.field, "message": exc.message, "type": "json"}],
        ) from None
    except json.JSONDecodeError as exc:
        raise Problem(
            400, "Malformed JSON", f"The body is not valid JSON: {exc.msg}.", type_="malformed-json"
        ) from None
    except (UnicodeDecodeError, ValueError):
        raise Problem(
            400, "Malformed JSON", "The body is not valid UTF-8 JSON.", type_="malformed-json"
        ) from None
