"""`GET /openapi.json`: the OpenAPI 3.1 document of every route, body and error."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api import schemas
from service.domain.requests import JobRequest
from service.domain.states import JobStatus

REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": REF.format(model=name)}


def _json(model: type[BaseModel] | str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(model)}},
        **extra,
    }


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
    if headers:
        out["headers"] = headers
    return out


RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
AUTH_ERRORS = {
    "401": _problem("Missing, unknown or revoked key"),
    "403": _problem("The key lacks the scope"),
}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


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
    return found


def build_document() -> dict[str, Any]:
    job_routes: dict[str, Any] = {
        "/v1/jobs": {
            "post": {
                "summary": "Create an outpaint job",
                "operationId": "createJob",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": "The same key and body within 24 hours answer the same job (200)",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref(JobRequest),
                            "example": {
                                "image": "https://example.com/room.png",
                                "prompt": "a cosy room, wide angle",
                                "width": 256,
                                "height": 192,
                                "metadata": {"order": "1234"},
                            },
                        }
                    },
                },
                "responses": {
                    "202": _json(
                        "Job",
                        "Accepted: the new job",
                        headers={"Location": {"schema": {"type": "string"}, "required": True}},
                    ),
                    "200": _json("Job", "The job this Idempotency-Key already made"),
                    "400": _problem("Malformed JSON, or a bad Idempotency-Key"),
                    **AUTH_ERRORS,
                    "413": _problem("Body over 1 MiB"),
                    "422": _problem(
                        "Invalid fields (listed in `errors`), or an Idempotency-Key reused with another body"
                    ),
                    "429": _problem("Creation rate or unfinished-job cap exceeded", RETRY_AFTER),
                },
            },
            "get": {
                "summary": "List jobs, newest first",
                "operationId": "listJobs",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": [s.value for s in JobStatus]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("JobList", "A page of jobs"),
                    **AUTH_ERRORS,
                    "422": _problem("Invalid query parameters"),
                },
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "One job",
                "operationId": "getJob",
                "security": [{"bearer": []}],
                "parameters": [JOB_ID],
                "responses": {
                    "200": _json("Job", "The job"),
                    **AUTH_ERRORS,
                    "404": _problem("No such job for this key"),
                },
            }
        },
        "/v1/jobs/{job_id}/events": {
            "get": {
                "summary": "A job's history",
                "operationId": "listJobEvents",
                "security": [{"bearer": []}],
                "parameters": [
                    JOB_ID,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("EventList", "A page of events, oldest first"),
                    **AUTH_ERRORS,
                    "404": _problem("No such job for this key"),
                    "422": _problem("Invalid query parameters"),
                },
            }
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Stop tracking a queued or processing job",
                "operationId": "cancelJob",
                "security": [{"bearer": []}],
                "parameters": [JOB_ID],
                "responses": {
                    "200": _json("Job", "The canceled job (for a key that may read jobs)"),
                    "204": {"description": "Canceled (a key without jobs:read learns no more)"},
                    **AUTH_ERRORS,
                    "404": _problem("No such job for this key"),
                    "409": _problem("The job is already finished"),
                },
            }
        },
        "/v1/jobs/{job_id}/refresh": {
            "post": {
                "summary": "Poll the provider for this job now",
                "operationId": "refreshJob",
                "security": [{"bearer": []}],
                "parameters": [JOB_ID],
                "responses": {
                    "200": _json("Job", "The job after the poll (for a key that may read jobs)"),
                    "202": {"description": "Polled (a key without jobs:read learns no more)"},
                    **AUTH_ERRORS,
                    "404": _problem("No such job for this key"),
                    "429": _problem("Refreshed too recently", RETRY_AFTER),
                },
            }
        },
        "/v1/jobs/{job_id}/callbacks/replay": {
            "post": {
                "summary": "Send the job's callback event again (same webhook-id)",
                "operationId": "replayCallback",
                "security": [{"bearer": []}],
                "parameters": [JOB_ID],
                "responses": {
                    "202": _json("CallbackReplay", "Queued for delivery"),
                    **AUTH_ERRORS,
                    "404": _problem("No such job for this key, or it has no callback"),
                    "409": _problem("The job has not finished yet"),
                },
            }
        },
        "/v1/stats": {
            "get": {
                "summary": "Counts, overdue work, throughput and latency (ops:read)",
                "operationId": "stats",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "client", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "window_seconds",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 60, "maximum": 604800},
                    },
                ],
                "responses": {
                    "200": _json("Stats", "The figures"),
                    **AUTH_ERRORS,
                    "422": _problem("Unknown client, or a window out of range"),
                },
            }
        },
        "/webhooks/modelslab/{token}": {
            "post": {
                "summary": "ModelsLab's callback (the token authenticates it)",
                "operationId": "modelslabWebhook",
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": _json("WebhookAck", "Stored (and applied, if it changed the job)"),
                    "400": _problem("Malformed JSON"),
                    "404": _problem("Unknown token"),
                    "413": _problem("Body over 1 MiB"),
                    "422": _problem("The body's track_id does not match the token"),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "responses": {
                    "200": _json("Health", "Alive"),
                    "503": _json("Health", "Background work stopped"),
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: database reachable, migrations at head",
                "operationId": "readyz",
                "responses": {
                    "200": _json("Ready", "Ready"),
                    "503": _json("Ready", "Not ready, and why"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "summary": "Swagger UI over this document (assets served locally)",
                "operationId": "docs",
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/dashboard": {
            "get": {
                "summary": "The ops page (its data comes from the API with an ops:read key)",
                "operationId": "dashboard",
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Outpaint Jobs",
            "version": "0.1.0",
            "description": "Outpaint images through ModelsLab; every request tracked as a job.",
        },
        "paths": job_routes,
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
