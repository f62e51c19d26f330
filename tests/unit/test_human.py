"""The progress line of `jobs watch` and `submit --wait`, pinned in time."""

from freezegun import freeze_time

from service.clock import utcnow
from service.human import progress_line

BASE = {"id": "job_1", "polls": 0, "webhooks": 0, "error": None, "output": []}


@freeze_time("2026-11-25 12:00:00")
def test_counts_down_to_the_eta() -> None:
    line = progress_line(
        {**BASE, "status": "processing", "eta_at": "2026-11-25T12:01:05Z"}, utcnow()
    )
    assert "processing" in line and "eta 1m05s" in line and "polls 0  webhooks 0" in line


@freeze_time("2026-11-25 12:00:00")
def test_says_overdue_past_the_eta() -> None:
    line = progress_line(
        {**BASE, "status": "processing", "eta_at": "2026-11-25T11:59:50Z", "polls": 2}, utcnow()
    )
    assert "overdue 10s" in line and "polls 2" in line


@freeze_time("2026-11-25 12:00:00")
def test_ends_with_the_output_or_the_error() -> None:
    done = progress_line(
        {**BASE, "status": "succeeded", "output": ["https://x.invalid/1.png"], "webhooks": 1},
        utcnow(),
    )
    assert done.endswith("https://x.invalid/1.png") and "eta" not in done
    failed = progress_line(
        {**BASE, "status": "failed", "error": {"code": "provider_error", "message": "NSFW"}},
        utcnow(),
    )
    assert "provider_error: NSFW" in failed


@freeze_time("2026-11-25 12:00:00")
def test_a_kept_output_is_shown_where_it_is_kept() -> None:
    provider = "https://x.invalid/1.png"
    keeping = {**BASE, "status": "succeeded", "output": [provider], "archive_status": "pending"}
    line = progress_line({**keeping, "archive_error": "http_404"}, utcnow())
    assert "keeping outputs (http_404)" in line and line.endswith(provider)
    kept = {
        **keeping,
        "archive_status": "done",
        "outputs": [{"url": "http://127.0.0.1:8000/v1/jobs/job_1/outputs/0", "error": None}],
    }
    assert progress_line(kept, utcnow()).endswith("/v1/jobs/job_1/outputs/0")
    lost = {**kept, "archive_status": "failed", "outputs": [{"url": None, "error": "too_large"}]}
    assert progress_line(lost, utcnow()).endswith("not kept: too_large")
