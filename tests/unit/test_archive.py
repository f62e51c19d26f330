"""What archiving decides: why an output still missing at its deadline is given up."""

from __future__ import annotations

from service.domain.archive import STORE_MISS, given_up


def test_an_output_the_store_kept_refusing_is_given_up_as_not_stored() -> None:
    assert given_up(f"{STORE_MISS}NoSuchBucket: gone") == "not_stored_by_deadline"
    assert given_up("http_404") == "not_found_by_deadline"
    assert given_up("connection: ConnectTimeout") == "not_found_by_deadline"


def test_a_store_refusal_is_retried_soon_without_backoff_a_missing_url_backs_off() -> None:
    from datetime import UTC, datetime, timedelta

    from service.domain.archive import ArchivePolicy, after_miss

    now = datetime(2026, 12, 5, tzinfo=UTC)
    deadline = now + timedelta(hours=23)
    policy = ArchivePolicy(retry_base_seconds=5.0, retry_max_seconds=600.0)
    for attempts in (0, 3, 9):
        store = after_miss(now, attempts, deadline, f"{STORE_MISS}NoSuchBucket: x", policy)
        assert store is not None and store.at - now <= timedelta(seconds=6)  # 5 s ± 20 %
    late = after_miss(now, 9, deadline, "http_404", policy)
    assert late is not None and late.at - now >= timedelta(seconds=480)  # 600 s ± 20 %
    assert after_miss(deadline, 0, deadline, f"{STORE_MISS}x", policy) is None


def test_only_a_change_that_makes_a_job_succeed_starts_its_archive() -> None:
    from datetime import UTC, datetime, timedelta

    from service.domain.archive import ArchivePolicy, deadline, starts_archive
    from service.domain.changes import Plan
    from service.domain.states import JobStatus as S

    assert starts_archive(Plan(S.PROCESSING, (S.SUCCEEDED,)))
    assert starts_archive(Plan(S.QUEUED, (S.PROCESSING, S.SUCCEEDED)))
    assert not starts_archive(Plan(S.PROCESSING, (S.FAILED,)))
    assert not starts_archive(Plan(S.PROCESSING, ()))
    now = datetime(2026, 12, 5, tzinfo=UTC)
    assert deadline(now, ArchivePolicy(deadline_seconds=60)) == now + timedelta(minutes=1)


def test_a_job_archive_is_done_only_when_every_output_is_stored() -> None:
    from service.domain.archive import DONE, FAILED, Stored, Unstored, output_json, record
    from service.domain.archive import status_of as status

    kept = Stored(0, "https://x.invalid/0.png", "k/0", "ab", 10, 2, 3, "image/png", "s3")
    lost = Unstored(1, "https://x.invalid/1.png", "not_an_image")
    assert status([kept]) == DONE
    assert status([kept, lost]) == FAILED
    assert status([]) == FAILED
    assert record(kept) == {
        "n": 0,
        "provider_url": "https://x.invalid/0.png",
        "object_key": "k/0",
        "sha256": "ab",
        "bytes": 10,
        "width": 2,
        "height": 3,
        "content_type": "image/png",
        "store": "s3",
        "error": None,
    }
    assert record(lost)["error"] == "not_an_image" and record(lost)["sha256"] is None
    assert output_json(kept, "https://ours.invalid/0") == {
        "url": "https://ours.invalid/0",
        "provider_url": "https://x.invalid/0.png",
        "sha256": "ab",
        "bytes": 10,
        "width": 2,
        "height": 3,
        "content_type": "image/png",
        "error": None,
    }
    assert output_json(lost, "https://ours.invalid/1")["url"] is None
