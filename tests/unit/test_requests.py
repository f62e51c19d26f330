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
