"""The job request a client sends, validated against the seed's limits.

ModelsLab documents maxima only; the minima here are ours (README, "Choices").
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from service.domain import jsonsafe

MAX_PROMPT_CHARS = 4000
# Metadata is flat, as Stripe's is: up to 50 keys of at most 40 characters, each value a
# string of at most 500 characters, a number within ±10^15, a boolean or null.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_CHARS = 40
MAX_METADATA_TEXT_CHARS = 500
METADATA_NUMBER_BOUND = 10**15

# What the validators below accept, said as regular expressions that the API document
# publishes unchanged (JSON Schema `pattern`, anchored with ^…$): a generated client, or a
# fuzzer, knows the exact shape, and the server checks with the same expressions.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = rf"(?=[A-Za-z0-9._-]{{1,253}}(?:[:/?#]|$)){_LABEL}(?:\.{_LABEL})*\.?"
_PORT = r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
# The length bounds live in the patterns (a `maxLength` beside a pattern like these makes
# schema-driven generators search for matches of exact lengths: minutes per field).
# A callback URL is at most MAX_CALLBACK_URL_CHARS: scheme 8, host 253, port 6, the rest.
MAX_CALLBACK_URL_CHARS = 2048
MAX_IMAGE_URL_CHARS = 8192  # signed storage URLs run long; servers commonly stop at 8 KiB


def _url(max_chars: int) -> str:
    return rf"https?://{_HOST}{_PORT}(?:[/?#][!-~]{{0,{max_chars - 8 - 253 - 6 - 1}}})?"


URL = _url(MAX_CALLBACK_URL_CHARS)
_B64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"
IMAGE = rf"{_url(MAX_IMAGE_URL_CHARS)}|data:image/[a-z0-9.+-]{{1,40}};base64,{_B64}|{_B64}"
NO_NUL = r"[^\u0000]*"


def anchored(pattern: str) -> str:
    """`pattern` as a JSON Schema `pattern` (ECMA: `$` is the end of the text)."""
    return f"^(?:{pattern})$"


_URL_RE = re.compile(URL)
_IMAGE_RE = re.compile(IMAGE)


def _integral(value: Any) -> Any:
    """JSON Schema's `integer`: any JSON number without a fractional part (`17.0` too), and
    nothing else (not `"17"`, not `true`): what the document says is what is accepted."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("must be an integer")


# Types are strict (a string is never a number, a number never a boolean); an integer is
# any integral JSON number.
Integer = Annotated[int, BeforeValidator(_integral)]


MetadataKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_METADATA_KEY_CHARS, pattern=anchored(NO_NUL)),
]
MetadataValue = (
    StrictBool
    | Annotated[
        int,
        Field(ge=-METADATA_NUMBER_BOUND, le=METADATA_NUMBER_BOUND),  # before the validator,
        BeforeValidator(_integral),  # or the document loses the bounds
    ]
    | Annotated[float, Field(ge=-METADATA_NUMBER_BOUND, le=METADATA_NUMBER_BOUND, strict=True)]
    | Annotated[
        str,
        StringConstraints(
            strict=True, max_length=MAX_METADATA_TEXT_CHARS, pattern=anchored(NO_NUL)
        ),
    ]
    | None
)


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class JobRequest(BaseModel):
    """Body of `POST /v1/jobs`. Unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    image: str = Field(
        min_length=1,
        description="URL of the image to outpaint (http or https), or its base64 data "
        "(optionally as a `data:image/...;base64,` URL).",
        json_schema_extra={"pattern": anchored(IMAGE)},
    )
    prompt: str = Field(
        "high quality", max_length=MAX_PROMPT_CHARS, json_schema_extra={"pattern": anchored(NO_NUL)}
    )
    negative_prompt: str = Field(
        "low quality", max_length=MAX_PROMPT_CHARS, json_schema_extra={"pattern": anchored(NO_NUL)}
    )
    width: Integer = Field(1280, ge=64, le=1440)
    height: Integer = Field(720, ge=64, le=1440)
    overlap_width: Integer = Field(10, ge=0, le=42)
    num_inference_steps: Integer = Field(10, ge=1, le=30)
    guidance_scale: float = Field(8.0, ge=0, le=50)
    seed: Annotated[int, Field(ge=-1, le=2**32 - 1), BeforeValidator(_integral)] | None = Field(
        None, description="-1 or 0 means random"
    )
    callback_url: str | None = Field(
        None,
        description="Where to POST the job's signed callback when it finishes: an http(s) URL "
        "whose host (letters, digits, `-`, `_`; IDNA names in their `xn--` form) resolves to "
        "public addresses only; at most 2048 characters.",
        json_schema_extra={"pattern": anchored(URL)},
    )
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_KEYS,
        description="Yours, returned as given: a flat object of up to 50 keys (at most 40 "
        "characters), each value a string of at most 500 characters, a number within "
        "±10^15, a boolean or null.",
    )

    @field_validator("image")
    @classmethod
    def _image_is_url_or_base64(cls, value: str) -> str:
        if not _IMAGE_RE.fullmatch(value):
            raise ValueError("must be an http(s) URL or base64 image data")
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback_is_http(cls, value: str | None) -> str | None:
        if value is not None and not _URL_RE.fullmatch(value):
            raise ValueError("must be an http(s) URL with a host name or IPv4 address")
        return value

    @field_validator(
        "image", "prompt", "negative_prompt", "callback_url", "metadata", mode="before"
    )
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        """Whatever the entry point (API, CLI), nothing a database or a reader chokes on."""
        if isinstance(value, str | dict):
            try:
                jsonsafe.check_value(value)
            except jsonsafe.UnsafeJson as exc:
                raise ValueError(exc.message) from None
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
