"""Turn any ModelsLab reply (docs/provider.md) into one `ProviderReply`. Never raises."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from service.domain.replies import ProviderReply, ReplyKind

PROCESSING_STATUSES = frozenset({"processing", "queued", "pending", "starting"})
ERROR_STATUSES = frozenset({"error", "failed"})
# An `error` that speaks of the account's queue or rate limit is not a verdict on the job:
# it is a 429 in a 200's clothing, and is retried like one.
_CAPACITY = re.compile(
    r"rate.?limit|queue (is )?full|queued requests|too many requests|capacity", re.IGNORECASE
)
_ASCII_INT = re.compile(r"-?[0-9]{1,18}")


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def speaks_of_capacity(message: str | None) -> bool:
    return bool(message) and _CAPACITY.search(message or "") is not None


def _urls(value: Any) -> tuple[str, ...]:
    """`output` / `proxy_links` come as a list, "", missing, one string or {"0": url}."""
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=str)]
    elif isinstance(value, str):
        value = [value] if value.strip() else []
    elif not isinstance(value, list):
        return ()
    return tuple(v.strip() for v in value if isinstance(v, str) and v.strip())


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _ASCII_INT.fullmatch(value.strip()):
        return int(value.strip())
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return None


_PROVIDER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _provider_id(value: Any) -> str | None:
    """An id as text: an integer, or a short plain string; anything else is no id."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if abs(value) < 10**18 else None
    if isinstance(value, str) and _PROVIDER_ID.fullmatch(value.strip()):
        return value.strip()
    return None


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value[:2000]
    if isinstance(value, list | dict):
        return str(value)[:2000]
    return str(value)


def parse_reply(data: Any) -> ProviderReply:
    if not isinstance(data, dict):
        return ProviderReply(ReplyKind.UNKNOWN, raw_status="<not an object>", raw={"body": data})
    raw_status = str(data.get("status") or "").strip()[:64]
    status = raw_status.lower()
    output = _urls(data.get("output"))
    provider_id = data.get("id")
    fetch_result = data.get("fetch_result")
    problem = None
    if status == "success":
        kind = ReplyKind.SUCCESS if output else ReplyKind.UNKNOWN
        if any(not is_http_url(url) for url in output):
            kind, problem = ReplyKind.UNKNOWN, "output_not_http"
    elif status in PROCESSING_STATUSES:
        kind = ReplyKind.PROCESSING
    elif status in ERROR_STATUSES:
        kind = ReplyKind.ERROR
    else:
        kind = ReplyKind.UNKNOWN
    return ProviderReply(
        kind=kind,
        raw_status=raw_status or "<missing>",
        provider_id=_provider_id(provider_id),
        eta_seconds=as_number(data.get("eta")),
        fetch_result=(
            fetch_result if isinstance(fetch_result, str) and is_http_url(fetch_result) else None
        ),
        output=output,
        message=_text(data.get("message") or data.get("messege") or data.get("error")),
        track_id=_int(data.get("track_id")),
        raw=data,
        problem=problem,
    )
