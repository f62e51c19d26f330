"""Turn any ModelsLab reply (PROVIDER-NOTES.md) into one `ProviderReply`. Never raises."""

from __future__ import annotations

import math
from typing import Any

from service.domain.replies import ProviderReply, ReplyKind

PROCESSING_STATUSES = frozenset({"processing", "queued", "pending", "starting"})
ERROR_STATUSES = frozenset({"error", "failed"})


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
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
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
    raw_status = str(data.get("status") or "").strip()
    status = raw_status.lower()
    output = _urls(data.get("output"))
    provider_id = data.get("id")
    fetch_result = data.get("fetch_result")
    if status == "success":
        kind = ReplyKind.SUCCESS if output else ReplyKind.UNKNOWN
    elif status in PROCESSING_STATUSES:
        kind = ReplyKind.PROCESSING
    elif status in ERROR_STATUSES:
        kind = ReplyKind.ERROR
    else:
        kind = ReplyKind.UNKNOWN
    return ProviderReply(
        kind=kind,
        raw_status=raw_status or "<missing>",
        provider_id=str(provider_id) if provider_id not in (None, "") else None,
        eta_seconds=as_number(data.get("eta")),
        fetch_result=fetch_result if isinstance(fetch_result, str) and fetch_result else None,
        output=output,
        message=_text(data.get("message") or data.get("messege") or data.get("error")),
        track_id=_int(data.get("track_id")),
        raw=data,
    )
