"""`GET /openapi.json`: the OpenAPI 3.1 document of the integrators' API (jobs and stats),
every response described, and the callbacks it sends under `webhooks`. Internal routes (the
provider's webhook, health, metrics, the dashboard, the docs) are not in it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api import schemas
from service.api.waiting import MAX_VERSION
from service.domain.requests import JobRequest

REF = "#/components/schemas/{model}"
JSON = "application/json"
PROBLEM = "application/problem+json"


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": REF.format(model=name)}


def _json(model: type[BaseModel] | str, description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(model)}}, **extra}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": _ref("Problem")}},
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
    "401": _problem("Missing, unknown or revoked key"),
    "403": _problem("The key lacks the scope"),
    "503": _problem("The database is unavailable for a moment", RETRY_AFTER),
}
NOT_FOUND = {"404": _problem("No such job for this key")}
JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
}
CURSOR = {
    "name": "cursor",
    "in": "query",
    "description": "The `next_cursor` of the previous page",
    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
}
WAIT = {
    "name": "wait",
    "in": "query",
    "description": "Hold the answer up to this many seconds, until the job has finished "
    "(or, with `since_version`, changed)",
    "schema": {"type": "integer", "minimum": 0, "maximum": 60},
}
SINCE_VERSION = {
    "name": "since_version",
    "in": "query",
    "description": "With `wait`: answer as soon as the job's version is past this one",
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_VERSION},
}
PREFER = {
    "name": "Prefer",
    "in": "header",
    "description": "`wait=N`: hold the answer until the job has finished or N seconds "
    "(at most 60) have passed (RFC 7240; other preferences are ignored)",
    "schema": {"type": "string"},
}
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
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "The same key and body within 24 hours answer the same job (200)",
    "schema": {"type": "string", "pattern": "^[!-~]([ -~]{0,198}[!-~])?$"},
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "description": "Resume after this event: the stream, or (without `cursor`) a page",
    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
}


def _flat_metadata(schema: dict[str, Any]) -> dict[str, Any]:
    """pydantic says a constrained key as `patternProperties` (leaving other keys free);
    the API means every key: `propertyNames` takes the pattern, `additionalProperties`
    the values."""
    ((pattern, values),) = schema.pop("patternProperties").items()
    schema["propertyNames"]["pattern"] = pattern
    schema["additionalProperties"] = values
    return schema


def _components() -> dict[str, Any]:
    found: dict[str, Any] = {}
    models: list[type[BaseModel]] = [JobRequest, *schemas.MODELS]
    for model in models:
        mode: Literal["validation", "serialization"] = (
            "validation" if model is JobRequest else "serialization"
        )
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    properties = found["JobRequest"]["properties"]
    properties["metadata"] = _flat_metadata(properties["metadata"])
    return found


def _operation(
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


def _paths() -> dict[str, Any]:
    job = _json("Job", "The job")
    return {
        "/v1/jobs": {
            "post": _operation(
                "createJob",
                "jobs",
                "Create an outpaint job",
                {
                    "202": _json(
                        "Job",
                        "Accepted: the new job (finished already if `Prefer: wait` allowed it)",
                        headers=HELD,
                        links=JOB_LINKS,
                    ),
                    "200": _json("Job", "The job this Idempotency-Key already made", headers=HELD),
                    "400": _problem("Malformed JSON, or a bad Idempotency-Key"),
                    "413": _problem("Body over 1 MiB"),
                    "422": _problem(
                        "Invalid fields (listed in `errors`), or an Idempotency-Key reused "
                        "with another body"
                    ),
                    "429": _problem(
                        "Creation rate, unfinished-job cap or waiting connections exceeded",
                        RETRY_AFTER,
                    ),
                },
                [IDEMPOTENCY_KEY, PREFER],
                requestBody={"required": True, "content": {JSON: {"schema": _ref(JobRequest)}}},
            ),
            "get": _operation(
                "listJobs",
                "jobs",
                "List jobs, newest first",
                {
                    "200": _json("JobList", "A page of jobs"),
                    "422": _problem("Invalid query parameters"),
                },
                [
                    {"name": "status", "in": "query", "schema": _ref("JobStatus")},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    CURSOR,
                    {
                        "name": "client",
                        "in": "query",
                        "description": "Only this client's jobs (its name; ops keys see every "
                        "client's, other keys only their own: another name lists nothing)",
                        "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},
                    },
                    {
                        "name": "q",
                        "in": "query",
                        "description": "Only the jobs this names exactly: a job id, a `track_id`, "
                        "a provider id or an `Idempotency-Key`",
                        "schema": {"type": "string", "pattern": "^[ -~]{1,200}$"},
                    },
                ],
            ),
        },
        "/v1/jobs/{job_id}": {
            "get": _operation(
                "getJob",
                "jobs",
                "One job (optionally waiting until it finishes or changes)",
                {
                    "200": job,
                    **NOT_FOUND,
                    "422": _problem("Invalid query parameters"),
                    "429": _problem("Too many waiting connections", RETRY_AFTER),
                },
                [JOB_ID, WAIT, SINCE_VERSION],
            )
        },
        "/v1/jobs/{job_id}/events": {
            "get": _operation(
                "listJobEvents",
                "jobs",
                "A job's history; with `Accept: text/event-stream`, live as Server-Sent Events",
                {
                    "200": {
                        "description": "A page of events, oldest first; or the event stream "
                        "(`id` is the event's id, `event` its kind, `data` the Event as JSON; "
                        "it ends after the job's last transition)",
                        "content": {
                            JSON: {"schema": _ref("EventList")},
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    "204": {
                        "description": "Stream only: the job has finished and nothing is "
                        "left after `Last-Event-ID` (an EventSource stops reconnecting)"
                    },
                    **NOT_FOUND,
                    "422": _problem("Invalid query parameters"),
                    "429": _problem("Too many waiting connections", RETRY_AFTER),
                },
                [
                    JOB_ID,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 500,
                            "default": 100,
                        },
                    },
                    CURSOR,
                    LAST_EVENT_ID,
                ],
            )
        },
        "/v1/jobs/{job_id}/outputs/{n}": {
            "get": _operation(
                "getJobOutput",
                "jobs",
                "An output of a succeeded job, from this service's output store",
                {
                    "200": {
                        "description": "The image, byte for byte as the provider made it "
                        "(`ETag`: its SHA-256; cacheable for good)",
                        "headers": {
                            "ETag": {"schema": {"type": "string"}},
                            "Cache-Control": {"schema": {"type": "string"}},
                        },
                        "content": {
                            kind: {"schema": {"type": "string", "format": "binary"}}
                            for kind in ("image/png", "image/jpeg", "image/webp", "image/gif")
                        },
                    },
                    "304": {"description": "Not modified (`If-None-Match` named its ETag)"},
                    "307": {
                        "description": "A short-lived signed URL of the object (S3, when "
                        "OUTPUT_PRESIGN_SECONDS is set)",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    "404": _problem("No such job for this key, or no such stored output"),
                },
                [
                    JOB_ID,
                    {
                        "name": "n",
                        "in": "path",
                        "required": True,
                        "description": "The output's index in `output`",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                    },
                ],
            )
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": _operation(
                "cancelJob",
                "jobs",
                "Stop tracking a queued or processing job",
                {
                    "200": _json("Job", "The canceled job (for a key that may read jobs)"),
                    "204": {"description": "Canceled (a key without jobs:read learns no more)"},
                    **NOT_FOUND,
                    "409": _problem("The job has already finished"),
                },
                [JOB_ID],
            )
        },
        "/v1/jobs/{job_id}/refresh": {
            "post": _operation(
                "refreshJob",
                "jobs",
                "Poll ModelsLab for this job now",
                {
                    "200": _json("Job", "The job after the poll (for a key that may read jobs)"),
                    "202": {"description": "Polled (a key without jobs:read learns no more)"},
                    **NOT_FOUND,
                    "429": _problem("Refreshed too recently", RETRY_AFTER),
                },
                [JOB_ID],
            )
        },
        "/v1/jobs/{job_id}/callbacks/replay": {
            "post": _operation(
                "replayCallback",
                "jobs",
                "Send the job's callback event again (the same webhook-id)",
                {
                    "202": _json("CallbackReplay", "Queued for delivery"),
                    **NOT_FOUND,
                    "409": _problem("The job has no callback event: unfinished, or no URL"),
                },
                [JOB_ID],
            )
        },
        "/v1/stats": {
            "get": _operation(
                "getStats",
                "stats",
                "Counts, overdue work, throughput, latency, provider health (ops:read)",
                {
                    "200": _json("Stats", "The figures"),
                    "404": _problem("No such client"),
                    "422": _problem("A window out of range"),
                },
                [
                    {
                        "name": "client",
                        "in": "query",
                        "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},
                    },
                    {
                        "name": "window_seconds",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 60, "maximum": 604800},
                    },
                ],
            )
        },
        "/v1/me": {
            "get": _operation(
                "getMe",
                "keys",
                "The calling key: its client, display prefix and scopes",
                {"200": _json("Me", "The key")},
                [],
            )
        },
        "/v1/stats/series": {
            "get": _operation(
                "getStatsSeries",
                "stats",
                "Figures over time, and generations per client and day (ops:read)",
                {
                    "200": _json("Series", "One point per step of the window"),
                    "422": _problem("An unknown window"),
                },
                [
                    {
                        "name": "window",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["1h", "24h", "7d"], "default": "1h"},
                    }
                ],
            )
        },
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


def _webhooks() -> dict[str, Any]:
    """The callbacks a job sends (Standard Webhooks), one entry per event type."""
    out = {}
    for event in ("succeeded", "failed", "timed_out", "canceled"):
        out[f"job.{event}"] = {
            "post": {
                "operationId": f"job{event.title().replace('_', '')}Callback",
                "tags": ["callbacks"],
                "summary": f"A job ended `{event}` (sent to its callback_url)",
                "parameters": CALLBACK_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("CallbackEvent")}},
                },
                "responses": {
                    "2XX": {"description": "Received; no further attempts"},
                    "410": {"description": "Gone: stop sending this event"},
                    "default": {"description": "Any other answer is retried with backoff"},
                },
            }
        }
    return out


def build_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Outpaint Jobs",
            "version": "0.1.0",
            "description": "Outpaint images through ModelsLab; every request tracked as a job.",
        },
        "tags": [
            {"name": "jobs", "description": "Create, read, wait for and act on jobs"},
            {"name": "stats", "description": "Figures for ops (ops:read)"},
            {"name": "keys", "description": "The calling key"},
            {"name": "callbacks", "description": "What a job POSTs to its callback_url"},
        ],
        "paths": _paths(),
        "webhooks": _webhooks(),
        "components": {
            "schemas": _components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


_DOCUMENT: dict[str, Any] | None = None


async def openapi_json(_request: Request) -> Response:
    global _DOCUMENT
    if _DOCUMENT is None:
        _DOCUMENT = build_document()
    return JSONResponse(_DOCUMENT)


routes = [Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)]
