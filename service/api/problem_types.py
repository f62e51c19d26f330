"""Every kind of problem the API answers with, and `GET /problems/{name}`: one short page
per kind, which is where each problem's `type` URI points (RFC 9457 §3.1.1)."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

BASE = "/problems/"

# name: (title, what it means and what to do)
TYPES: dict[str, tuple[str, str]] = {
    "validation": (
        "Invalid request",
        "A field or parameter is not acceptable; `errors` lists each with the reason. "
        "Fix the request; sending it again unchanged fails the same way.",
    ),
    "malformed-json": (
        "Malformed JSON",
        "The body is not JSON this API accepts: not JSON at all, or holding NaN or "
        "Infinity, a number out of range, an integer over 19 digits, a NUL character or a "
        "lone surrogate, or nesting deeper than 32 levels.",
    ),
    "bad-idempotency-key": (
        "Bad Idempotency-Key",
        "The Idempotency-Key header must be 1 to 200 printable characters.",
    ),
    "idempotency-conflict": (
        "Idempotency-Key reused",
        "This Idempotency-Key was used within 24 hours for a request with another body. "
        "Use a new key for a new request.",
    ),
    "payload-too-large": ("Payload too large", "The body is over MAX_BODY_BYTES (1 MiB)."),
    "unauthorized": (
        "Unauthorized",
        "Send `Authorization: Bearer KEY` with a key that exists and is not revoked.",
    ),
    "forbidden": ("Forbidden", "The key lacks the scope this route needs."),
    "not-found": (
        "Not found",
        "No such resource for this key: another client's job answers exactly like a job "
        "that does not exist.",
    ),
    "method-not-allowed": ("Method not allowed", "The `Allow` header lists the methods."),
    "rate-limited": (
        "Too many requests",
        "A rate limit was reached (job creations per client per minute, refreshes per job, "
        "or waiting connections). Retry after `Retry-After` seconds.",
    ),
    "too-many-unfinished": (
        "Too many unfinished jobs",
        "The client has CLIENT_MAX_UNFINISHED jobs queued or processing. Retry once some "
        "have finished (`Retry-After`).",
    ),
    "job-terminal": ("Conflict", "The job has already finished; it can no longer change."),
    "job-busy": ("Conflict", "The job kept changing under the request; try again."),
    "no-callback-yet": (
        "Conflict",
        "The job has no callback event to send: it has not finished yet, or it has no "
        "callback URL.",
    ),
    "mismatched-webhook": (
        "Mismatched webhook",
        "The webhook body's track_id does not match the job its URL names.",
    ),
    "unavailable": (
        "Service unavailable",
        "The database is unavailable for a moment. Retry after `Retry-After` seconds; "
        "nothing was stored.",
    ),
    "provider-unavailable": (
        "Provider unavailable",
        "ModelsLab is not answering; the job is polled as soon as it does.",
    ),
    "internal": ("Internal error", "Something went wrong on our side; it was logged."),
    "http-error": ("HTTP error", "The request could not be served as sent."),
}


def uri(name: str) -> str:
    if name not in TYPES:
        raise KeyError(
            f"unregistered problem type {name!r}: add it to service/api/problem_types.py"
        )
    return BASE + name


async def problem_page(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in TYPES:
        return HTMLResponse(
            "<!doctype html><title>Unknown problem</title><p>No such problem type.", 404
        )
    title, text = TYPES[name]
    body = (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p><code>{BASE}{html.escape(name)}</code></p>"
        f"<p>{html.escape(text)}</p>"
    )
    return HTMLResponse(body)


routes = [Route(BASE + "{name}", problem_page, methods=["GET"], include_in_schema=False)]
