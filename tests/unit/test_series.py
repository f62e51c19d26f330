"""The series ops chart, shaped from per-minute rows: every step present, quantiles as
Prometheus computes them."""

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.series import points, quantile, since

NOW = datetime(2026, 11, 25, 12, 30, 40, tzinfo=UTC)


def test_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [("1", 0.0), ("2", 10.0), ("5", 20.0), ("+Inf", 20.0)]
    assert quantile(0.5, buckets) == pytest.approx(2.0)
    assert quantile(0.25, buckets) == pytest.approx(1.5)
    assert quantile(0.75, buckets) == pytest.approx(3.5)
    assert quantile(0.5, [("1", 0.0), ("+Inf", 0.0)]) is None
    assert quantile(0.99, [("1", 1.0), ("+Inf", 10.0)]) == 1.0  # beyond the last bound
    assert quantile(0.5, [("-10", 4.0), ("0", 8.0), ("+Inf", 8.0)]) == -10.0


def test_every_step_of_the_window_is_there_with_what_happened_in_it() -> None:
    minute = NOW.replace(second=0)
    rows = [
        (minute, "created", "", 3.0),
        (minute, "finished", "succeeded", 2.0),
        (minute - timedelta(minutes=1), "finished", "failed", 1.0),
        (minute, "results", "webhook", 3.0),
        (minute, "results", "poll", 1.0),
        (minute, "provider_errors", "rate_limited", 2.0),
        (minute, "to_result_le", "5", 1.0),
        (minute, "to_result_le", "10", 2.0),
        (minute, "to_result_le", "+Inf", 2.0),
        (minute - timedelta(hours=2), "created", "", 99.0),  # outside the window
    ]
    series = points(rows, NOW, "1h")
    assert len(series) == 60
    assert series[0]["at"] == "2026-11-25T11:31:00Z" and series[-1]["at"] == "2026-11-25T12:30:00Z"
    last, before = series[-1], series[-2]
    assert last["created"] == 3 and last["finished"]["succeeded"] == 2
    assert before["finished"]["failed"] == 1 and before["created"] == 0
    assert last["results"] == {"webhook": 3, "poll": 1} and last["webhook_share"] == 0.75
    assert last["rate_limited"] == 2 and last["provider_errors"] == {"rate_limited": 2}
    assert last["to_result_p50_seconds"] == pytest.approx(5.0)
    assert before["to_result_p50_seconds"] is None and before["webhook_share"] is None
    assert sum(p["created"] for p in series) == 3


@pytest.mark.parametrize(("window", "step", "count"), [("24h", 900, 96), ("7d", 3600, 168)])
def test_longer_windows_fold_minutes_into_steps(window: str, step: int, count: int) -> None:
    rows = [(NOW.replace(second=0) - timedelta(minutes=m), "created", "", 1.0) for m in range(30)]
    series = points(rows, NOW, window)
    assert len(series) == count
    assert sum(p["created"] for p in series) == 30
    assert (NOW - since(NOW, window)).total_seconds() < count * step
