"""How long finished jobs are kept: an age of at least a day, and the cutoff it gives."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.domain.retention import parse_age, prune_cutoff
from tests.factories import SNAPSHOT_AT


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("30d", timedelta(days=30)),
        (" 24h ", timedelta(hours=24)),
        ("1440m", timedelta(days=1)),
        ("86400s", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_an_age_reads_with_its_unit(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "30", "d30", "1.5d", "30 days", "-1d"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="like 30d"):
        parse_age(text)


def test_less_than_a_day_would_outrun_idempotency_keys() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        parse_age("23h")


def test_the_cutoff_is_that_long_ago() -> None:
    assert prune_cutoff(SNAPSHOT_AT, timedelta(days=30)) == SNAPSHOT_AT - timedelta(days=30)
