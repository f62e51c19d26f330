"""The pieces the API document (`openapi.py`) is built from: references, responses, one
operation's frame, and the parameters and headers several operations share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.api.waiting import MAX_VERSION

REF = "#/components/schemas/{model}"
JSON = "application/json"
PROBLEM = "application/problem+json"


def ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": REF.format(model=name)}


def json_body(model: type[BaseModel] | str, description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref(model)}}, **extra}


def problem_body(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": ref("Problem")}},
    }
    if headers:
        out["headers"] = headers
    return out


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
        "required": True,
    }
}
COMMON = {
    "401": problem_body("Missing, unknown or revoked key"),
    "403": problem_body("The key lacks the scope"),
    "503": problem_body("The database is unavailable for a moment", RETRY_AFTER),
}
NOT_FOUND = {"404": problem_body("No such job for this key")}


def parameter(
    name: str,
    where: str,
    schema: dict[str, Any],
    description: str | None = None,
    required: bool | None = None,
) -> dict[str, Any]:
    """One parameter: in `where` (path, query or header)."""
    out: dict[str, Any] = {"name": name, "in": where}
    if required is not None:
        out["required"] = required
    if description is not None:
        out["description"] = description
    out["schema"] = schema
    return out


DIGITS = {"type": "string", "pattern": "^[0-9]{1,18}$"}
# A client's name, as `client=` takes it (`params.CLIENT_NAME`): no control characters.
CLIENT_NAME = {"type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f]{1,200}$"}
JOB_ID = parameter(
    "job_id", "path", {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"}, required=True
)
CURSOR = parameter("cursor", "query", DIGITS, "The `next_cursor` of the previous page")
WAIT = parameter(
    "wait",
    "query",
    {"type": "integer", "minimum": 0, "maximum": 60},
    "Hold the answer up to this many seconds, until the job has settled "
    "(or, with `since_version`, changed)",
)
SINCE_VERSION = parameter(
    "since_version",
    "query",
    {"type": "integer", "minimum": 0, "maximum": MAX_VERSION},
    "With `wait`: answer as soon as the job's version is past this one",
)
PREFER = parameter(
    "Prefer",
    "header",
    {"type": "string"},
    "`wait=N`: hold the answer until the job has settled (201) or N seconds "
    "(at most 60) have passed (202) (RFC 7240; other preferences are ignored; not applied "
    "for a key without jobs:read)",
)
HELD = {
    "Location": {
        "description": "The job's URL",
        "schema": {"type": "string"},
        "required": True,
    },
    "Preference-Applied": {
        "description": "`wait=N` when the answer was held (`Prefer: wait=N`)",
        "schema": {"type": "string", "pattern": "^wait=[0-9]{1,2}$"},
    },
}
# What a client can do next with the job it was given (OpenAPI links: generators and
# stateful fuzzers follow them).
JOB_LINKS = {
    name: {"operationId": operation, "parameters": {"job_id": "$response.body#/id"}}
    for name, operation in (
        ("GetJob", "getJob"),
        ("ListJobEvents", "listJobEvents"),
        ("CancelJob", "cancelJob"),
        ("RefreshJob", "refreshJob"),
        ("ReplayCallback", "replayCallback"),
    )
}
IDEMPOTENCY_KEY = parameter(
    "Idempotency-Key",
    "header",
    {"type": "string", "pattern": "^[!-~]([ -~]{0,198}[!-~])?$"},
    "The same key and body within 24 hours answer the same job (200)",
    required=False,
)
LAST_EVENT_ID = parameter(
    "Last-Event-ID",
    "header",
    DIGITS,
    "Resume after this event: the stream, or (without `cursor`) a page",
)


def operation(
    operation_id: str,
    tag: str,
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": parameters or [],
        "responses": {**responses, **COMMON},
        **extra,
    }


CALLBACK_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id (`msg_…`), the same on every attempt: deduplicate on it",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds of this attempt",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the client's "
        "`whsec_` secret; space-separated when a rotated secret still signs",
        "schema": {"type": "string"},
    },
]
