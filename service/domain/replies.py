"""One normalised provider reply, whatever shape ModelsLab used (docs/provider.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ReplyKind(StrEnum):
    SUCCESS = "success"  # finished, with at least one output URL
    PROCESSING = "processing"  # not finished yet
    ERROR = "error"  # a provider verdict: `error` or `failed`
    UNKNOWN = "unknown"  # a status we do not know, or success without output


@dataclass(frozen=True)
class ProviderReply:
    kind: ReplyKind
    raw_status: str
    provider_id: str | None = None
    eta_seconds: float | None = None
    fetch_result: str | None = None
    output: tuple[str, ...] = ()
    message: str | None = None
    track_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # why a reply of a known status was refused as malformed
