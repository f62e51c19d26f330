"""ASGI middleware: a request id for every request, in the logs and the response; the
boundary that turns any exception into a problem answer, so none reaches the server (which
would log a second traceback); and CORS for the origins CORS_ALLOW_ORIGINS names."""

from __future__ import annotations

import itertools
import os

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import logs
from service.api.problems import unexpected

HEADER = b"x-request-id"
# On every answer: a browser takes each body as the type it is served with, never sniffs
# another (a GIF with a script appended stays an image).
NOSNIFF = (b"x-content-type-options", b"nosniff")
_PREFIX = os.urandom(6).hex()  # this process's; the counter makes each id unique within it
_COUNTER = itertools.count(1)


class RequestId:
    """Takes the caller's X-Request-ID (if short and printable) or makes one; every log line
    of the request carries it, and the response echoes it (with `nosniff`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")
        rid = given if 0 < len(given) <= 64 and given.isprintable() else _new_id()
        token = logs.request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER, rid.encode()), NOSNIFF]
            await send(message)

        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started:  # too late to answer: the server closes the connection
                raise
            response = unexpected(scope.get("method", ""), scope.get("path", ""), exc)
            await response(scope, receive, send_with_id)
        finally:
            logs.request_id.reset(token)


def _new_id() -> str:
    """Unique per process (a random prefix) and cheap (no system call per request)."""
    return f"{_PREFIX}{next(_COUNTER):010x}"


# What a page may send (a key, a JSON body, our request headers, an EventSource's resume)
# and read (where a job is, its output's checksum, when to retry, whether a wait applied).
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Prefer",
    "Last-Event-ID",
    "If-None-Match",
    "X-Request-ID",
)
CORS_EXPOSED_HEADERS = ("Location", "ETag", "Retry-After", "Preference-Applied", "X-Request-ID")


def cors(origins: list[str]) -> Middleware:
    """Starlette's CORS middleware for these origins: no cookies (keys travel in headers,
    event links in their URL), preflights cached for ten minutes."""
    return Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=list(CORS_REQUEST_HEADERS),
        expose_headers=list(CORS_EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=600,
    )
