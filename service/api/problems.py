"""RFC 9457 problem details: every error the API answers is one of these."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.api import problem_types
from service.domain.decisions import Refusal
from service.domain.jobs import Job
from service.store.health import HEALTH, unavailable

log = logging.getLogger("service.api")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = problem_types.uri(type_ or title.lower().replace(" ", "-"))
        self.errors = errors
        self.headers = dict(headers or {})

    def response(self) -> Response:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(body, self.status, headers=self.headers, media_type=PROBLEM_JSON)


def validation_problem(exc: ValidationError) -> Problem:
    errors = [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "body",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return Problem(
        422,
        "Invalid request",
        "The request body does not match the schema.",
        type_="validation",
        errors=errors,
    )


def not_found(what: str = "Job") -> Problem:
    return Problem(404, "Not found", f"{what} not found.", type_="not-found")


def refused(refusal: Refusal, job: Job | None = None) -> Problem:
    """The one answer to each reason the domain refuses an ask (`decisions.Refusal`). A
    webhook's token for a job long finished answers like an unknown one: not found."""
    if refusal in (Refusal.GONE, Refusal.EXPIRED):
        return not_found()
    if refusal is Refusal.FINISHED:
        status = job.status.value if job is not None else "finished"
        return Problem(409, "Conflict", f"The job is already {status}.", type_="job-terminal")
    if refusal is Refusal.MISMATCH:
        return Problem(
            422,
            "Mismatched webhook",
            "The body's track_id does not match the URL.",
            type_="mismatched-webhook",
        )
    return Problem(409, "Conflict", "The job kept changing; try again.", type_="job-busy")


def rate_limited(detail: str, retry_after_seconds: int) -> Problem:
    """429 with `Retry-After`: a limit a client may retry after, once it has passed."""
    return Problem(
        429,
        "Too many requests",
        detail,
        type_="rate-limited",
        headers={"Retry-After": str(retry_after_seconds)},
    )


async def handle_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response()


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    title = titles.get(exc.status_code, "HTTP error")
    return Problem(
        exc.status_code, title, str(exc.detail) if exc.detail else None, headers=exc.headers
    ).response()


def unexpected(method: str, path: str, exc: BaseException) -> Response:
    """The answer to an exception nothing else handled. The database being unavailable is
    an outage, not a bug: 503 with Retry-After, one log line per kind per interval. Anything
    else is a fault: 500, and its traceback logged once (secrets are cut from it)."""
    kind = unavailable(exc)
    if kind is not None:
        HEALTH.failed(kind, f"{method} {path}")
        return Problem(
            503,
            "Service unavailable",
            "The database is unavailable; try again shortly.",
            type_="unavailable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ).response()
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return Problem(500, "Internal error", "The error was logged.", type_="internal").response()


EXCEPTION_HANDLERS = {
    Problem: handle_problem,
    HTTPException: handle_http_exception,
}
