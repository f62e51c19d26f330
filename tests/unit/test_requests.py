"""The job request body, against the seed's limits."""

import pytest
from pydantic import ValidationError

from service.domain.requests import JobRequest

URL = "https://example.invalid/in.png"


def test_defaults_are_the_seeds() -> None:
    r = JobRequest(image=URL)
    assert (r.width, r.height, r.overlap_width, r.num_inference_steps) == (1280, 720, 10, 10)
    assert r.guidance_scale == 8.0
    assert r.prompt == "high quality"
    assert r.negative_prompt == "low quality"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("width", 1441),
        ("height", 1441),
        ("overlap_width", 43),
        ("overlap_width", 64),  # the SDKs' default, over the documented maximum
        ("num_inference_steps", 31),
        ("width", 0),
        ("seed", -2),
    ],
)
def test_limits(field: str, value: int) -> None:
    with pytest.raises(ValidationError) as info:
        JobRequest.model_validate({"image": URL, field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_the_maxima_themselves_are_accepted() -> None:
    JobRequest(image=URL, width=1440, height=1440, overlap_width=42, num_inference_steps=30)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        JobRequest.model_validate({"image": URL, "key": "sneaky"})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_image_may_be_base64_or_a_data_url() -> None:
    assert JobRequest(image="aGVsbG8=").is_base64
    assert JobRequest(image="data:image/png;base64,aGVsbG8=").is_base64
    assert not JobRequest(image=URL).is_base64
    with pytest.raises(ValidationError):
        JobRequest(image="not an image!")
    with pytest.raises(ValidationError):
        JobRequest(image="ftp://example.invalid/a.png")


def test_callback_url_must_be_http() -> None:
    with pytest.raises(ValidationError):
        JobRequest(image=URL, callback_url="file:///etc/passwd")


def test_provider_fields_carry_no_client_only_fields() -> None:
    fields = JobRequest(
        image=URL, metadata={"a": 1}, callback_url="https://x.example.invalid/cb"
    ).provider_fields()
    assert "metadata" not in fields and "callback_url" not in fields and "seed" not in fields
    assert fields["base64"] is False
    assert JobRequest(image=URL, seed=42).provider_fields()["seed"] == 42


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"width": 1184.0}, True),  # JSON Schema's integer: integral numbers, 17.0 too
        ({"seed": 7.0}, True),
        ({"guidance_scale": 7}, True),  # an integer is a number
        ({"width": "1184"}, False),  # a string is never a number
        ({"width": True}, False),  # nor a boolean
        ({"width": 100.5}, False),
        ({"prompt": 5}, False),
        ({"metadata": {"n": "1"}}, True),
        ({"metadata": {"n": 17.0, "m": 17}}, True),
        ({"metadata": {"n": [1]}}, False),
        ({"metadata": {"n": 10**15 + 1}}, False),
    ],
)
def test_types_are_what_the_document_says(body: dict[str, object], accepted: bool) -> None:
    """JSON in, as a client sends it: no coercion the published schema does not allow."""
    import json

    text = json.dumps({"image": URL, **body})
    if accepted:
        JobRequest.model_validate_json(text)
    else:
        with pytest.raises(ValidationError):
            JobRequest.model_validate_json(text)


def test_url_lengths_are_bounded_by_the_patterns_themselves() -> None:
    """After the host and port, a separator and 1780 characters for a callback URL (2048
    at most in all, as netguard checks), a separator and 7924 for an image URL."""
    base = "https://" + ".".join(["h" * 60] * 3) + ".invalid:65535"
    JobRequest(image=URL, callback_url=f"{base}/{'p' * 1780}")
    assert len(f"{base}/{'p' * 1780}") <= 2048
    with pytest.raises(ValidationError):
        JobRequest(image=URL, callback_url=f"{base}/{'p' * 1781}")
    JobRequest(image=f"{base}/{'p' * 7924}")
    with pytest.raises(ValidationError):
        JobRequest(image=f"{base}/{'p' * 7925}")


def test_every_bound_reaches_the_published_schema() -> None:
    """pydantic writes a constraint placed after a BeforeValidator as its own name (`ge`),
    which JSON Schema ignores: a generated client or a fuzzer would not see the bound."""
    from service.api.openapi import build_document

    def internal_keys(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [k for k in ("ge", "gt", "le", "lt", "multiple_of") if k in node]
            return found + [k for v in node.values() for k in internal_keys(v)]
        if isinstance(node, list):
            return [k for v in node for k in internal_keys(v)]
        return []

    assert internal_keys(JobRequest.model_json_schema()) == []
    assert internal_keys(build_document()) == []
