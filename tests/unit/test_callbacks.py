"""Callbacks to clients, decided without a network: the payload every attempt sends, how an
attempt is judged, the retry schedule, and signatures the reference library accepts."""

from __future__ import annotations

import base64
import json
import random
from datetime import timedelta

import pytest
from freezegun import freeze_time
from standardwebhooks.webhooks import Webhook

from service.domain import callbacks
from service.domain.callbacks import DEAD, DELIVERED, FAILING, judge
from service.domain.states import JobStatus
from tests.factories import SNAPSHOT_AT, job_snapshot

NOW = SNAPSHOT_AT + timedelta(minutes=5)
SCHEDULE = (0.0, 5.0, 300.0)


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = callbacks.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert callbacks.new_secret() != secret
    assert callbacks.new_webhook_id().startswith("msg_")


def test_the_payload_names_the_event_and_when_the_job_finished() -> None:
    done = job_snapshot(status=JobStatus.SUCCEEDED, completed_at=SNAPSHOT_AT, output=["u"])
    event_type, body = callbacks.payload(done, NOW)
    assert event_type == "job.succeeded"
    data = json.loads(body)
    assert data["type"] == "job.succeeded"
    assert data["timestamp"] == "2026-12-04T12:00:00Z"
    assert data["data"]["id"] == done.public_id and data["data"]["output"] == ["u"]
    assert body == json.dumps(data, separators=(",", ":"), sort_keys=True)  # compact, stable
    undated = job_snapshot(status=JobStatus.CANCELED)
    assert json.loads(callbacks.payload(undated, NOW)[1])["timestamp"] == "2026-12-04T12:05:00Z"


@pytest.mark.parametrize("status", [200, 204, 299])
def test_a_2xx_delivers(status: int) -> None:
    attempt = judge(0, status, None, 12.5, NOW, SCHEDULE)
    assert (attempt.outcome, attempt.next_attempt_at, attempt.advance) == (DELIVERED, None, False)
    assert attempt.latency_ms == 12.5


def test_a_410_or_an_unsafe_url_ends_the_delivery() -> None:
    assert judge(0, 410, None, 1.0, NOW, SCHEDULE).outcome == DEAD
    unsafe = judge(0, None, "resolves to a private address", 0.0, NOW, SCHEDULE, unsafe=True)
    assert unsafe.outcome == DEAD and unsafe.error == "resolves to a private address"


def test_other_failures_retry_on_the_schedule_until_it_is_spent() -> None:
    rng = random.Random(7)
    first = judge(0, 500, None, 3.0, NOW, SCHEDULE, rng=rng)
    assert first.outcome == FAILING and first.advance
    assert first.next_attempt_at is not None
    assert timedelta(seconds=4.5) <= first.next_attempt_at - NOW <= timedelta(seconds=5.5)
    timeout = judge(1, None, "timeout", 10_000.0, NOW, SCHEDULE, rng=rng)
    assert timeout.next_attempt_at is not None
    assert timedelta(seconds=270) <= timeout.next_attempt_at - NOW <= timedelta(seconds=330)
    last = judge(2, 503, None, 3.0, NOW, SCHEDULE)
    assert (last.outcome, last.next_attempt_at) == (DEAD, None)


def test_a_longer_retry_after_wins_and_is_capped_at_a_day() -> None:
    later = callbacks.next_attempt(NOW, 0, SCHEDULE, retry_after_seconds=3600.0)
    assert later == NOW + timedelta(hours=1)
    capped = callbacks.next_attempt(NOW, 0, SCHEDULE, retry_after_seconds=1e9)
    assert capped == NOW + timedelta(days=1)
    shorter = callbacks.next_attempt(NOW, 0, SCHEDULE, 1.0, random.Random(1))
    assert shorter is not None and shorter - NOW >= timedelta(seconds=4.5)


def test_a_signature_verifies_with_the_reference_library() -> None:
    secret = callbacks.new_secret()
    body = '{"type":"job.succeeded"}'
    with freeze_time(NOW):
        stamp = int(NOW.timestamp())
        header = callbacks.signature_header([secret], "msg_1", stamp, body)
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(stamp)}
        Webhook(secret).verify(body, {**headers, "webhook-signature": header})
    assert header == callbacks.sign(secret, "msg_1", stamp, body)
    assert header.startswith("v1,")


def test_during_rotation_both_secrets_sign_until_the_old_one_expires() -> None:
    until = NOW + timedelta(hours=1)
    assert callbacks.live_secrets("new", "old", until, NOW) == ["new", "old"]
    assert callbacks.live_secrets("new", "old", until, until) == ["new"]
    assert callbacks.live_secrets("new", None, None, NOW) == ["new"]
    header = callbacks.signature_header(["whsec_AAAA", "whsec_BBBB"], "msg_1", 1, "{}")
    assert len(header.split(" ")) == 2 and all(p.startswith("v1,") for p in header.split(" "))


def test_a_schedule_is_comma_separated_seconds_none_negative() -> None:
    assert callbacks.parse_schedule("0, 5,300,") == (0.0, 5.0, 300.0)
    for bad in ("", " , ", "5,-1"):
        with pytest.raises(ValueError, match="CALLBACK_RETRY_SCHEDULE"):
            callbacks.parse_schedule(bad)
    with pytest.raises(ValueError):
        callbacks.parse_schedule("soon")
