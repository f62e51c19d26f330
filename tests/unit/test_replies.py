"""Every reply variant of docs/provider.md parses into one shape, and never raises."""

import pytest

from service.domain.outcomes import PROVIDER_ERROR, outcome_of
from service.domain.replies import ReplyKind
from service.domain.states import JobStatus
from service.provider.replies import parse_reply

OUT = "https://cdn.example.invalid/x.png"


def test_processing_reply_with_float_eta_and_fetch_result() -> None:
    r = parse_reply(
        {
            "status": "processing",
            "eta": 146.58,
            "fetch_result": "https://modelslab.invalid/api/v6/image_editing/fetch/123",
            "id": 123,
            "output": [],
            "future_links": [OUT],
            "proxy_links": {"0": OUT},
            "messege": "legacy spelling",
        }
    )
    assert r.kind is ReplyKind.PROCESSING
    assert r.eta_seconds == 146.58
    assert r.provider_id == "123"
    assert r.output == ()  # future_links never count as output
    assert r.message == "legacy spelling"


@pytest.mark.parametrize("output", [[], "", None])
def test_processing_output_variants(output: object) -> None:
    body = {"status": "processing", "id": "9"}
    if output is not None:
        body["output"] = output
    r = parse_reply(body)
    assert r.kind is ReplyKind.PROCESSING and r.output == () and r.provider_id == "9"


def test_success_webhook() -> None:
    r = parse_reply({"status": "success", "id": 5, "output": [OUT], "track_id": "77"})
    assert r.kind is ReplyKind.SUCCESS and r.output == (OUT,) and r.track_id == 77


def test_success_with_output_as_object() -> None:
    assert parse_reply({"status": "success", "output": {"0": OUT}}).output == (OUT,)


def test_success_without_output_is_not_a_success() -> None:
    r = parse_reply({"status": "success", "output": []})
    assert r.kind is ReplyKind.UNKNOWN
    o = outcome_of(r)
    assert o.to_status is None and o.warning == "success_without_output"


@pytest.mark.parametrize("status", ["error", "failed", "FAILED"])
def test_errors_are_verdicts(status: str) -> None:
    r = parse_reply({"status": status, "id": "", "message": "Request not found"})
    assert r.kind is ReplyKind.ERROR and r.provider_id is None
    o = outcome_of(r)
    assert o.to_status is JobStatus.FAILED
    assert (o.error_code, o.error_message) == (PROVIDER_ERROR, "Request not found")


def test_unknown_status_keeps_waiting_and_is_kept_raw() -> None:
    r = parse_reply({"status": "rendering", "eta": "12"})
    assert r.kind is ReplyKind.UNKNOWN and r.raw_status == "rendering" and r.eta_seconds == 12
    assert outcome_of(r).warning == "unknown_status:rendering"


@pytest.mark.parametrize("body", [None, [], "ok", 3, {"eta": "soon", "id": True}, {"status": None}])
def test_nonsense_never_raises(body: object) -> None:
    assert parse_reply(body).kind is ReplyKind.UNKNOWN


def test_bad_eta_values_are_dropped() -> None:
    for eta in ["nan", "inf", -5, True, "x"]:
        assert parse_reply({"status": "processing", "eta": eta}).eta_seconds is None


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "javascript:alert(1)", "//x.invalid/a", "data:,x"]
)
def test_an_output_that_is_not_http_makes_the_reply_malformed(url: str) -> None:
    reply = parse_reply({"status": "success", "output": [OUT, url]})
    assert reply.kind is ReplyKind.UNKNOWN and reply.problem == "output_not_http"
    outcome = outcome_of(reply)
    assert outcome.to_status is None and outcome.warning == "malformed_reply:output_not_http"


def test_odd_ids_and_statuses_are_bounded() -> None:
    reply = parse_reply(
        {
            "status": "x" * 500,
            "id": {"nested": "object"},
            "track_id": "²",
            "fetch_result": "javascript:alert(1)",
        }
    )
    assert len(reply.raw_status) <= 64 and reply.provider_id is None
    assert reply.track_id is None and reply.fetch_result is None
    assert parse_reply({"status": "processing", "id": 10**30}).provider_id is None
    assert parse_reply({"status": "processing", "id": " 123 "}).provider_id == "123"
    assert parse_reply({"status": "processing", "track_id": 1e300}).track_id is None
