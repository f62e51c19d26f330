"""`GET /openapi.json`: the OpenAPI 3.1 document of the integrators' API (jobs and stats),
every response described, and the callbacks it sends under `webhooks`. Internal routes (the
provider's webhook, health, metrics, the dashboard, the docs) are not in it."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api import schemas
from service.api.context import ctx_of
from service.api.openapi_parts import (
    CALLBACK_HEADERS,
    CLIENT_NAME,
    CURSOR,
    HELD,
    IDEMPOTENCY_KEY,
    JOB_ID,
    JOB_LINKS,
    JSON,
    LAST_EVENT_ID,
    NOT_FOUND,
    PREFER,
    REF,
    RETRY_AFTER,
    SINCE_VERSION,
    WAIT,
    json_body,
    operation,
    parameter,
    problem_body,
    ref,
)
from service.domain.requests import JobRequest
from service.domain.states import TERMINAL, in_order


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
    for schema in properties.values():
        _default_in_words(schema)
    return found


def _default_in_words(schema: dict[str, Any]) -> None:
    """A request field's default, said in its description rather than as `default`:
    generators with their default options (openapi-typescript's `defaultNonNullable`)
    make every field that has a `default` required, so a client could not leave it out.
    The field stays optional (it is not in `required`), and the server fills it in."""
    if "default" in schema:
        value = schema.pop("default")
        said = f"Default: {json.dumps(value)}." if value is not None else "Default: none."
        schema["description"] = (
            f"{schema['description']} {said}" if "description" in schema else said
        )


def _paths() -> dict[str, Any]:
    job = json_body("Job", "The job")
    return {
        "/v1/jobs": {
            "post": operation(
                "createJob",
                "jobs",
                "Create an outpaint job",
                {
                    "201": json_body(
                        "Job",
                        "Created, and settled within `Prefer: wait=N`: the job with its kept "
                        "outputs",
                        headers=HELD,
                        links=JOB_LINKS,
                    ),
                    "202": json_body(
                        "Job",
                        "Accepted: the new job, not settled yet (or no `Prefer: wait`)",
                        headers=HELD,
                        links=JOB_LINKS,
                    ),
                    "200": json_body(
                        "Job", "The job this Idempotency-Key already made", headers=HELD
                    ),
                    "204": {
                        "description": "Created, or replayed, for a key without jobs:read: "
                        "it learns only the job's `Location` (no wait is applied)",
                        "headers": {"Location": HELD["Location"]},
                    },
                    "400": problem_body("Malformed JSON, or a bad Idempotency-Key"),
                    "413": problem_body("Body over 1 MiB"),
                    "422": problem_body(
                        "Invalid fields (listed in `errors`), or an Idempotency-Key reused "
                        "with another body"
                    ),
                    "429": problem_body(
                        "Creation rate, unfinished-job cap or waiting connections exceeded",
                        RETRY_AFTER,
                    ),
                },
                [IDEMPOTENCY_KEY, PREFER],
                requestBody={"required": True, "content": {JSON: {"schema": ref(JobRequest)}}},
            ),
            "get": operation(
                "listJobs",
                "jobs",
                "List jobs, newest first",
                {
                    "200": json_body("JobList", "A page of jobs"),
                    "422": problem_body("Invalid query parameters"),
                },
                [
                    {"name": "status", "in": "query", "schema": ref("JobStatus")},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    CURSOR,
                    parameter(
                        "client",
                        "query",
                        CLIENT_NAME,
                        "Only this client's jobs (its name; ops keys see every client's, other "
                        "keys only their own: another name lists nothing)",
                    ),
                    parameter(
                        "q",
                        "query",
                        {"type": "string", "pattern": "^[ -~]{1,200}$"},
                        "Only the jobs this names exactly: a job id, a `track_id`, a provider id "
                        "or an `Idempotency-Key`",
                    ),
                ],
            ),
        },
        "/v1/jobs/{job_id}": {
            "get": operation(
                "getJob",
                "jobs",
                "One job (optionally waiting until it settles or changes)",
                {
                    "200": job,
                    **NOT_FOUND,
                    "422": problem_body("Invalid query parameters"),
                    "429": problem_body("Too many waiting connections", RETRY_AFTER),
                },
                [JOB_ID, WAIT, SINCE_VERSION],
            )
        },
        "/v1/jobs/{job_id}/events": {
            "get": operation(
                "listJobEvents",
                "jobs",
                "A job's history; with `Accept: text/event-stream`, live as Server-Sent Events",
                {
                    "200": {
                        "description": "A page of events, oldest first; or the event stream "
                        "(`id` is the event's id, `event` its kind, `data` the Event as JSON), "
                        "ending after the event that settled the job (the archive's, when its "
                        "outputs are kept) with one last message, `event: settled`, whose "
                        "`data` is the settled Job",
                        "content": {
                            JSON: {"schema": ref("EventList")},
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    "204": {
                        "description": "Stream only: the job has settled and `Last-Event-ID` "
                        "is at or past the settling event (an EventSource stops "
                        "reconnecting); later events stay readable as JSON pages"
                    },
                    **NOT_FOUND,
                    "422": problem_body("Invalid query parameters"),
                    "429": problem_body("Too many waiting connections", RETRY_AFTER),
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
                    parameter(
                        "token",
                        "query",
                        {"type": "string", "pattern": "^evl_[A-Za-z0-9._-]{1,200}$"},
                        "An event link's token (`POST /v1/jobs/{id}/event-links`): stands in "
                        "for `Authorization`, for this job's events only",
                    ),
                ],
            )
        },
        "/v1/jobs/{job_id}/event-links": {
            "post": operation(
                "createEventLink",
                "jobs",
                "A URL of this job's event stream that needs no key, for a browser's EventSource",
                {
                    "201": json_body("EventLink", "The link, valid EVENT_LINK_TTL_SECONDS"),
                    **NOT_FOUND,
                },
                [JOB_ID],
            )
        },
        "/v1/jobs/{job_id}/outputs/{n}": {
            "get": operation(
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
                        "OUTPUT_PRESIGN_SECONDS is set); the object there carries its "
                        "Content-Type and its SHA-256 (`x-amz-meta-sha256`)",
                        "headers": {
                            "Location": {"schema": {"type": "string"}},
                            "ETag": {"schema": {"type": "string"}},
                        },
                    },
                    "404": problem_body("No such job for this key, or no such stored output"),
                },
                [
                    JOB_ID,
                    {
                        "name": "n",
                        "in": "path",
                        "required": True,
                        "description": "The output's index in `output`",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                    },
                ],
            )
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": operation(
                "cancelJob",
                "jobs",
                "Stop tracking a queued or processing job",
                {
                    "200": json_body("Job", "The canceled job (for a key that may read jobs)"),
                    "204": {"description": "Canceled (a key without jobs:read learns no more)"},
                    **NOT_FOUND,
                    "409": problem_body("The job has already finished"),
                },
                [JOB_ID],
            )
        },
        "/v1/jobs/{job_id}/refresh": {
            "post": operation(
                "refreshJob",
                "jobs",
                "Poll ModelsLab for this job now",
                {
                    "200": json_body(
                        "Job", "The job after the poll (for a key that may read jobs)"
                    ),
                    "202": {"description": "Polled (a key without jobs:read learns no more)"},
                    **NOT_FOUND,
                    "429": problem_body("Refreshed too recently", RETRY_AFTER),
                },
                [JOB_ID],
            )
        },
        "/v1/jobs/{job_id}/callbacks/replay": {
            "post": operation(
                "replayCallback",
                "jobs",
                "Send the job's callback event again (the same webhook-id)",
                {
                    "202": json_body("CallbackReplay", "Queued for delivery"),
                    **NOT_FOUND,
                    "409": problem_body("The job has no callback event: unfinished, or no URL"),
                },
                [JOB_ID],
            )
        },
        "/v1/stats": {
            "get": operation(
                "getStats",
                "stats",
                "Counts, overdue work, throughput, latency, provider health (ops:read)",
                {
                    "200": json_body("Stats", "The figures"),
                    "404": problem_body("No such client"),
                    "422": problem_body("A window out of range"),
                },
                [
                    parameter("client", "query", CLIENT_NAME, "Only this client's figures"),
                    {
                        "name": "window_seconds",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 60, "maximum": 604800},
                    },
                ],
            )
        },
        "/v1/me": {
            "get": operation(
                "getMe",
                "keys",
                "The calling key: its client, display prefix and scopes",
                {"200": json_body("Me", "The key")},
                [],
            )
        },
        "/v1/stats/series": {
            "get": operation(
                "getStatsSeries",
                "stats",
                "Figures over time, and generations per client and day (ops:read)",
                {
                    "200": json_body("Series", "One point per step of the window"),
                    "422": problem_body("An unknown window"),
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


def _webhooks() -> dict[str, Any]:
    """The callbacks a job sends (Standard Webhooks), one entry per event type."""
    out = {}
    for event in in_order(TERMINAL):
        out[f"job.{event}"] = {
            "post": {
                "operationId": f"job{event.title().replace('_', '')}Callback",
                "tags": ["callbacks"],
                "summary": f"A job ended `{event}` (sent to its callback_url)",
                "parameters": CALLBACK_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref("CallbackEvent")}},
                },
                "responses": {
                    "2XX": {"description": "Received; no further attempts"},
                    "410": {"description": "Gone: stop sending this event"},
                    "default": {"description": "Any other answer is retried with backoff"},
                },
            }
        }
    return out


def build_document(server: str = "/") -> dict[str, Any]:
    """The document; `server` is where this deployment answers (PUBLIC_BASE_URL)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Outpaint Jobs",
            "version": "0.1.0",
            "description": "Outpaint images through ModelsLab; every request tracked as a job.",
        },
        "servers": [{"url": server, "description": "This deployment"}],
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


_DOCUMENTS: dict[str, dict[str, Any]] = {}  # built once per server URL


async def openapi_json(request: Request) -> Response:
    server = ctx_of(request).settings.base_url
    document = _DOCUMENTS.get(server)
    if document is None:
        document = _DOCUMENTS[server] = build_document(server)
    return JSONResponse(document)


routes = [Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)]
