"""The job request a client sends, validated against the seed's limits.

ModelsLab documents maxima only; the minima here are ours (README, "Choices").
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.domain import jsonsafe

MAX_METADATA_BYTES = 16 * 1024
MAX_PROMPT_CHARS = 4000


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class JobRequest(BaseModel):
    """Body of `POST /v1/jobs`. Unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(
        min_length=1,
        description="URL of the image to outpaint (http or https), or its base64 data "
        "(optionally as a `data:image/...;base64,` URL).",
    )
    prompt: str = Field("high quality", max_length=MAX_PROMPT_CHARS)
    negative_prompt: str = Field("low quality", max_length=MAX_PROMPT_CHARS)
    width: int = Field(1280, ge=64, le=1440)
    height: int = Field(720, ge=64, le=1440)
    overlap_width: int = Field(10, ge=0, le=42)
    num_inference_steps: int = Field(10, ge=1, le=30)
    guidance_scale: float = Field(8.0, ge=0, le=50)
    seed: int | None = Field(None, ge=-1, le=2**32 - 1, description="-1 or 0 means random")
    callback_url: str | None = Field(None, max_length=2048)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("image")
    @classmethod
    def _image_is_url_or_base64(cls, value: str) -> str:
        if _is_http_url(value):
            return value
        data = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be an http(s) URL or base64 image data") from None
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback_is_http(cls, value: str | None) -> str | None:
        if value is not None and not _is_http_url(value):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("image", "prompt", "negative_prompt", "callback_url", mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        """Whatever the entry point (API, CLI), nothing a database or a reader chokes on."""
        if isinstance(value, str):
            try:
                jsonsafe.check_value(value)
            except jsonsafe.UnsafeJson as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_is_small(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonsafe.check_value(value, "metadata")
        except jsonsafe.UnsafeJson as exc:
            raise ValueError(exc.message) from None
        if len(json.dumps(value, separators=(",", ":"), allow_nan=False)) > MAX_METADATA_BYTES:
            raise ValueError(f"must serialise to at most {MAX_METADATA_BYTES} bytes")
        return value

    @property
    def is_base64(self) -> bool:
        return not _is_http_url(self.image)

    def provider_fields(self) -> dict[str, Any]:
        """The fields ModelsLab's outpaint takes (without key, webhook and track_id)."""
        body: dict[str, Any] = self.model_dump(exclude={"callback_url", "metadata"})
        if body["seed"] is None:
            del body["seed"]
        body["base64"] = self.is_base64
        return body
