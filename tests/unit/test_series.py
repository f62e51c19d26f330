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


def test_the_archive_backlog_is_a_level_and_archived_outputs_a_count() -> None:
    minute = NOW.replace(second=0)
    rows = [
        (minute - timedelta(minutes=5), "archive_backlog", "", 7.0),
        (minute - timedelta(minutes=4), "archive_backlog", "", 3.0),
        (minute - timedelta(minutes=4), "archived", "stored", 2.0),
        (minute - timedelta(minutes=3), "archived", "stored", 1.0),
        (minute - timedelta(minutes=3), "archived", "not_an_image", 1.0),
        (minute - timedelta(minutes=3), "archived", "too_large", 1.0),
    ]
    by_minute = points(rows, NOW, "1h")
    assert [p["archive_backlog"] for p in by_minute[-6:-2]] == [7, 3, None, None]
    assert by_minute[-4]["archived"] == {"stored": 1, "not_stored": 2}
    # A quarter of an hour keeps the highest level of its minutes, and adds the counts.
    [quarter] = [p for p in points(rows, NOW, "24h") if p["archive_backlog"] is not None]
    assert quarter["archive_backlog"] == 7
    assert quarter["archived"] == {"stored": 3, "not_stored": 2}
    assert points([], NOW, "1h")[-1]["archived"] == {"stored": 0, "not_stored": 0}
