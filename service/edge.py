"""The HTTP edge: how long a client may take to send a request's line and headers and then
its body, how large its headers may be, and how many connections one process holds, so that
nobody without a key can hold the service down. uvicorn has no deadline for receiving a
request (its keep-alive timer restarts on every byte, and a connection that never sends a
byte is never timed), so this is its httptools protocol with those bounds added."""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service import metrics
from service.throttle import Throttled

log = logging.getLogger("service.edge")

HEADERS, BODY, IDLE, CLOSING = "headers", "body", "idle", "closing"
LINGER_SECONDS = 1.0  # after an answer of the edge's own, before the connection closes
RESERVE = 64  # descriptors a process keeps for itself: the database, files, outbound calls


@dataclass(frozen=True)
class EdgeLimits:
    """From Settings: RECEIVE_HEADERS_SECONDS, RECEIVE_BODY_SECONDS, MAX_HEADER_BYTES,
    MAX_CONNECTIONS (0: from this process's descriptor limit)."""

    header_seconds: float = 10.0
    body_seconds: float = 30.0
    max_header_bytes: int = 16 * 1024
    max_connections: int = 0

    def connection_budget(self) -> int:
        """How many connections this process holds at once: MAX_CONNECTIONS, else its
        descriptor limit less a quarter of it (at least RESERVE) for everything else."""
        if self.max_connections:
            return self.max_connections
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 65536
        return max(soft - max(RESERVE, soft // 4), 16)


def _answer(status: int, reason: str, text: str, retry_after: int | None = None) -> bytes:
    """A whole response written by the edge itself (the app never saw the request)."""
    body = text.encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: text/plain; charset=utf-8",
        f"content-length: {len(body)}",
        "x-content-type-options: nosniff",
        "connection: close",
    ]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Said:
    """What the edge ended: counted by reason, and said once per reason per interval."""

    def __init__(self) -> None:
        self.throttled = Throttled(log)

    def note(self, reason: str, message: str) -> None:
        metrics.EDGE_ENDED.labels(reason).inc()
        self.throttled.note(reason, "%s", message)


def bounded(limits: EdgeLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with `limits` on receiving requests and connections."""
    budget = limits.connection_budget()
    said = _Said()
    too_many = _answer(503, "Service Unavailable", "Too many connections; retry.", 1)
    too_slow = _answer(408, "Request Timeout", "The request did not arrive in time.")
    too_large = _answer(431, "Request Header Fields Too Large", "The headers are too large.")

    class Bounded(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._state = HEADERS
            self._head_bytes = 0
            self._deadline: asyncio.TimerHandle | None = None
            self._refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= budget:  # answered at once, never held
                self._refused = True
                said.note("connection_budget", f"connections refused past {budget} held")
                transport.write(too_many)
                transport.close()
                return
            super().connection_made(transport)
            self._expect_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if not self._refused:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused or self._state == CLOSING:
                return
            if self._state == IDLE:  # the next request on a kept-alive connection
                self._expect_headers()
            if self._state == HEADERS:  # counted up to the blank line that ends them
                end = data.find(b"\r\n\r\n")
                self._head_bytes += len(data) if end < 0 else end
                if self._head_bytes > limits.max_header_bytes:  # refused, never parsed
                    said.note(
                        "header_too_large",
                        f"requests refused with over {limits.max_header_bytes} bytes of headers",
                    )
                    self._end(too_large)
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._state = BODY
            self._arm(limits.body_seconds)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            self._state = IDLE
            super().on_message_complete()

        def _expect_headers(self) -> None:
            self._state = HEADERS
            self._head_bytes = 0
            self._arm(limits.header_seconds)

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._late)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _late(self) -> None:
            self._deadline = None
            if self.transport is None or self.transport.is_closing() or self._state == CLOSING:
                return
            if self._state == HEADERS:
                said.note(
                    "header_timeout",
                    f"connections ended: no whole request line and headers in {limits.header_seconds:g} s",
                )
            else:
                said.note(
                    "body_timeout", f"requests ended: no whole body in {limits.body_seconds:g} s"
                )
            started = self.cycle is not None and self.cycle.response_started
            self._end(None if started else too_slow)

        def _end(self, answer: bytes | None) -> None:
            """Answer (unless a response has begun) and close the connection; a request
            the app is reading sees the client gone. What the client still sends is read
            and dropped for a moment (LINGER_SECONDS), so the answer reaches it rather than
            a reset."""
            self._disarm()
            self._state = CLOSING
            if answer is not None:
                self.transport.write(answer)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    return Bounded
