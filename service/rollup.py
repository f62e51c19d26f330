"""The per-minute series ops chart: what this process counted since its last flush, read
from its own Prometheus counters (so no hot path counts twice)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from service import metrics
from service.domain.states import TERMINAL, in_order

Key = tuple[str, str]  # (series name, label)

# Which samples feed which series, and the label kept: sample name → (series, label key).
_SOURCES: dict[str, tuple[str, str | None]] = {
    "outpaint_jobs_created_total": ("created", None),
    "outpaint_transitions_total": ("finished", "to_status"),
    "outpaint_provider_results_total": ("results", "via"),
    "outpaint_provider_errors_total": ("provider_errors", "kind"),
    "outpaint_callback_deliveries_total": ("callbacks", "outcome"),
    "outpaint_webhook_lateness_seconds_bucket": ("lateness_le", "le"),
    "outpaint_job_seconds_bucket": ("to_result_le", "le"),
    "outpaint_outputs_archived_total": ("archived", "outcome"),
}
FINISHED = frozenset(in_order(TERMINAL))

# Generations the provider accepted, by client (resubmissions included): the usage ops
# charge back per day. Counted by the submitter; flushed and reset by the rollup.
GENERATIONS: Counter[int] = Counter()


def snapshot() -> dict[Key, float]:
    """This process's running totals of every series source."""
    totals: dict[Key, float] = {}
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            source = _SOURCES.get(sample.name)
            if source is None:
                continue
            series, label = source
            value = sample.labels.get(label, "") if label else ""
            if series == "finished" and value not in FINISHED:
                continue
            key = (series, value)
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def deltas(before: Mapping[Key, float], now: Mapping[Key, float]) -> dict[Key, float]:
    """What grew between two snapshots (nothing that did not)."""
    out = {}
    for key, value in now.items():
        grown = value - before.get(key, 0.0)
        if grown > 0:
            out[key] = grown
    return out
