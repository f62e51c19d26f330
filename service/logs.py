"""Logging set-up: readable console lines, or one JSON object per line (LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}
CONTEXT_FIELDS = ("request_id", "job_id", "track_id")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("job_id", default=None)
track_id: ContextVar[int | None] = ContextVar("track_id", default=None)


@contextmanager
def job_context(public_id: str | None, track: int | None) -> Iterator[None]:
    """Tag every log line inside with the job's ids."""
    tokens = (job_id.set(public_id), track_id.set(track))
    try:
        yield
    finally:
        job_id.reset(tokens[0])
        track_id.reset(tokens[1])


class ContextFilter(logging.Filter):
    """Adds request_id, job_id and track_id (when set) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id), ("job_id", job_id), ("track_id", track_id)):
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k)]
        return f"{line} [{' '.join(tags)}]" if tags else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RedactTokens(logging.Filter):
    """Webhook tokens travel in the URL path; keep them out of access logs."""

    _token = re.compile(r"(/webhooks/modelslab/)[^\s\"?]+")

    def _clean(self, value: object) -> object:
        if isinstance(value, int | float | bool) or value is None:
            return value
        text = str(value)  # URLs arrive as objects (httpx.URL), not only as strings
        return self._token.sub(r"\1[redacted]", text) if self._token.search(text) else value

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = self._token.sub(r"\1[redacted]", record.msg)
        return True


def install_redaction() -> None:
    """Filter at the loggers that print URLs (the access log, httpx), so every handler
    (ours, a test's) gets them clean."""
    for name in ("uvicorn.access", "httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
    # Database drivers log statements with their parameters (key hashes, signing secrets)
    # at DEBUG: never let them, whatever LOG_LEVEL says.
    for name in ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool"):
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(log_format: str = "console", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ConsoleFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    install_redaction()
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
