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
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_PATTERNS = (
    # Event links' tokens, in a URL's query (the access log) or alone (first: their tail
    # looks like a webhook token).
    (re.compile(r"\bevl_[A-Za-z0-9._-]+"), "evl_[redacted]"),
    # Webhook tokens travel in the URL path, and may turn up alone in a message.
    (re.compile(r"(/webhooks/modelslab/)[^\s\"'?#&]+"), r"\1[redacted]"),
    (re.compile(r"\b[0-9]{1,18}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"), "[redacted-token]"),
    # Values bound to a statement, as drivers quote them in their errors (asyncpg: "invalid
    # input for query argument $1: 2147483648 (value out of int32 range)"; PostgreSQL's
    # "Key (client_id)=(275)" details), like SQLAlchemy's own hide_parameters.
    (re.compile(r"(invalid input for query argument \$[0-9]+: ).*"), r"\1[redacted]"),
    (re.compile(r"(Key \([^)\n]{1,200}\)=\()[^\n]*?(\) )"), r"\1[redacted]\2"),
    # Client API keys and callback signing secrets, wherever they turn up.
    (re.compile(r"\bopj_[A-Za-z0-9_-]{8,}"), "opj_[redacted]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{8,}"), "whsec_[redacted]"),
)
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """A secret of this process (the provider key, WEBHOOK_SECRET) never to be logged."""
    if value and len(value) >= 8:
        _secrets.add(value)


def redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        if pattern.search(text):
            text = pattern.sub(replacement, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


def _clean(value: object) -> object:
    if value is None or isinstance(value, int | float | bool):
        return value
    text = str(value)  # URLs arrive as objects (httpx.URL), not only as strings
    cleaned = redact_text(text)
    return value if cleaned == text else cleaned


_plain = logging.Formatter()


def scrub(record: logging.LogRecord) -> None:
    """Redact a record's message, arguments and traceback in place."""
    if isinstance(record.msg, str):
        record.msg = redact_text(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_clean(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _clean(v) for k, v in record.args.items()}
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact_text(_plain.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


def install_redaction() -> None:
    """Redact at the root: every record of the process, whoever logs it and whichever
    handler (ours, uvicorn's, a test's) prints it, is scrubbed as it is made. Tracebacks
    are formatted once, redacted, and kept as the record's exc_text, which every
    formatter prints instead of formatting the exception again."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "outpaint_redacts", False):

        def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = factory(*args, **kwargs)
            scrub(record)
            return record

        make_record.outpaint_redacts = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(make_record)
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
