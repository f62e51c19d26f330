"""Event link tokens: they name one job and one key, expire, and cannot be altered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.domain.links import Grant, make_link, read_link
from service.domain.tokens import make_token
from service.logs import redact_text

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=900)


def test_a_link_carries_its_job_key_and_expiry_until_it_expires() -> None:
    token = make_link("s3cret", 42, 7, LATER)
    assert token.startswith("evl_42.7.")
    assert read_link("s3cret", token, NOW) == Grant(42, 7, LATER)
    assert read_link("s3cret", token, LATER - timedelta(seconds=1)) is not None
    assert read_link("s3cret", token, LATER) is None


def test_an_altered_or_foreign_token_is_refused() -> None:
    token = make_link("s3cret", 42, 7, LATER)
    job, key, expires, mac = token.removeprefix("evl_").split(".")
    for forged in (
        f"evl_43.{key}.{expires}.{mac}",  # another job
        f"evl_{job}.8.{expires}.{mac}",  # another key
        f"evl_{job}.{key}.{int(expires) + 3600}.{mac}",  # a longer life
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        "evl_42.7.1.x",
        "",
    ):
        assert read_link("s3cret", forged, NOW) is None, forged
    assert read_link("another secret", token, NOW) is None
    # a webhook token is not a link, even with the same secret and numbers
    assert read_link("s3cret", "evl_" + make_token("s3cret", 42), NOW) is None


def test_a_link_never_reaches_a_log_line() -> None:
    token = make_link("s3cret", 42, 7, LATER)
    line = f'"GET /v1/jobs/job_x/events?token={token} HTTP/1.1" 200'
    assert redact_text(line) == '"GET /v1/jobs/job_x/events?token=evl_[redacted] HTTP/1.1" 200'
