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
