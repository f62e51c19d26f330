"""The ModelsLab client against a mocked transport (the only place the provider is mocked)."""

import json
from datetime import timedelta

import httpx
import pytest

from service.domain.replies import ReplyKind
from service.provider.client import ModelsLabClient, ProviderRejected, RetryableProviderError

BASE = "https://modelslab.invalid/api/v6"


def client_for(handler: object) -> ModelsLabClient:
    return ModelsLabClient(BASE, "secret-key", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


async def test_submit_sends_key_webhook_and_integer_track_id() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json={"status": "processing", "eta": 3.5, "id": 1})

    c = client_for(handler)
    reply = await c.submit(
        {"image": "https://x.invalid/i.png", "width": 256}, "https://me.invalid/webhook", 42
    )
    await c.aclose()
    assert seen["url"] == f"{BASE}/image_editing/outpaint"
    body = seen["body"]
    assert isinstance(body, dict)
    assert body["key"] == "secret-key" and body["track_id"] == 42
    assert body["webhook"] == "https://me.invalid/webhook" and body["width"] == 256
    assert reply.kind is ReplyKind.PROCESSING and reply.eta_seconds == 3.5


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "retry_after"),
    [
        (
            429,
            {
                "status": "error",
                "message": "Rate limit exceeded. Maximum 5 queued requests allowed.",
                "retry_after": 30,
            },
            {},
            "rate_limited",
            30,
        ),
        (429, {}, {"retry-after": "12"}, "rate_limited", 12),
        (500, {"message": "boom"}, {}, "server_error", None),
        (503, "<html>busy</html>", {}, "server_error", None),
        (200, "<html>not json</html>", {}, "bad_reply", None),
    ],
)
async def test_retryable_answers(
    status: int, body: object, headers: dict[str, str], kind: str, retry_after: float | None
) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    c = client_for(handler)
    with pytest.raises(RetryableProviderError) as info:
        await c.fetch(None, "7")
    await c.aclose()
    assert info.value.kind == kind
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize("status", [400, 401, 402, 403])
async def test_verdicts_are_not_retried(status: int) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"status": "error", "message": "no credits"})

    c = client_for(handler)
    with pytest.raises(ProviderRejected) as info:
        await c.submit({}, "https://me.invalid/w", 1)
    await c.aclose()
    assert info.value.status_code == status and info.value.message == "no credits"


async def test_timeouts_and_connection_errors_are_retryable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler, kind in [(slow, "timeout"), (down, "connection")]:
        c = client_for(handler)
        with pytest.raises(RetryableProviderError) as info:
            await c.fetch(None, "1")
        await c.aclose()
        assert info.value.kind == kind


async def test_fetch_uses_fetch_result_on_the_provider_host_only() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        assert json.loads(request.content) == {"key": "secret-key"}
        return httpx.Response(
            200, json={"status": "success", "output": ["https://cdn.invalid/x.png"]}
        )

    c = client_for(handler)
    await c.fetch("https://modelslab.invalid/api/v6/image_editing/fetch/5", "5")
    await c.fetch("https://evil.example.invalid/steal", "6")  # never send the key elsewhere
    await c.fetch(None, "7")
    await c.aclose()
    assert urls == [
        f"{BASE}/image_editing/fetch/5",
        f"{BASE}/image_editing/fetch/6",
        f"{BASE}/image_editing/fetch/7",
    ]


async def test_fetch_with_nothing_to_poll_is_refused() -> None:
    c = client_for(lambda r: httpx.Response(200, json={}))
    with pytest.raises(ProviderRejected):
        await c.fetch(None, None)
    await c.aclose()


@pytest.mark.parametrize(
    "message",
    ["Rate limit exceeded. Maximum 5 queued requests allowed.", "Queue is full, try later"],
)
async def test_an_error_that_speaks_of_the_queue_is_retried_like_a_429(message: str) -> None:
    c = client_for(
        lambda r: httpx.Response(
            200, json={"status": "error", "message": message, "retry_after": 7}
        )
    )
    with pytest.raises(RetryableProviderError) as info:
        await c.submit({"image": "https://x.invalid/i.png"}, "https://me.invalid/webhook", 1)
    await c.aclose()
    assert info.value.kind == "rate_limited" and info.value.retry_after == 7


async def test_a_retry_after_date_is_read() -> None:
    from email.utils import format_datetime

    from service.clock import utcnow

    when = format_datetime(utcnow() + timedelta(seconds=90), usegmt=True)
    c = client_for(lambda r: httpx.Response(503, headers={"Retry-After": when}))
    with pytest.raises(RetryableProviderError) as info:
        await c.fetch(None, "1")
    await c.aclose()
    assert info.value.retry_after is not None and 85 <= info.value.retry_after <= 90


@pytest.mark.parametrize(
    "url",
    [
        "https://modelslab.invalid.evil.invalid/steal",
        "https://modelslab.invalid:444/api/v6/image_editing/fetch/5",
        "http://modelslab.invalid/api/v6/image_editing/fetch/5",
        "https://user@modelslab.invalid/api/v6/image_editing/fetch/5",
        "https://evilmodelslab.invalid/x",
    ],
)
async def test_a_fetch_result_off_the_providers_origin_is_not_used(url: str) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={"status": "processing"})

    c = client_for(handler)
    await c.fetch(url, "5")
    await c.aclose()
    assert urls == [f"{BASE}/image_editing/fetch/5"]


async def test_a_lookalike_of_a_loopback_provider_is_not_used() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={"status": "processing"})

    c = ModelsLabClient(
        "http://127.0.0.1:18406/api/v6", "k", transport=httpx.MockTransport(handler)
    )
    await c.fetch("http://127.0.0.1:18406.evil.invalid/steal", "5")
    await c.fetch("http://127.0.0.1:18406/api/v6/image_editing/fetch/6", "6")
    await c.aclose()
    assert urls == [
        "http://127.0.0.1:18406/api/v6/image_editing/fetch/5",
        "http://127.0.0.1:18406/api/v6/image_editing/fetch/6",
    ]


async def test_a_reply_with_values_no_store_can_hold_is_a_bad_reply() -> None:
    c = client_for(lambda r: httpx.Response(200, content=b'{"status": "processing", "eta": NaN}'))
    with pytest.raises(RetryableProviderError) as info:
        await c.fetch(None, "1")
    await c.aclose()
    assert info.value.kind == "bad_reply"
