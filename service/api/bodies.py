"""Reading request bodies: bounded in size, parsed as JSON, with clear errors."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from service.api.problems import Problem


def too_large(limit: int) -> Problem:
    return Problem(413, "Payload too large", f"The body is over {limit} bytes.")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit`, without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Problem(400, "Malformed JSON", f"The body is not valid JSON: {exc}") from None
