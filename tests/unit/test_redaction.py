"""Secrets are cut out of whatever is stored or logged."""

import json

import httpx

from service.domain.redaction import REDACTED, redact
from service.provider.client import ModelsLabClient, ProviderRejected

KEY = "sk-provider-secret-0123456789"
HOOK = "https://svc.example.invalid/webhooks/modelslab/42.abcdefghijklmnop"


def test_fields_and_substrings_are_redacted() -> None:
    value = {
        "key": KEY,
        "meta": {"webhook": HOOK, "note": f"sent to {HOOK}"},
        "list": [KEY],
        "n": 3,
    }
    out = redact(value, [KEY, HOOK])
    assert KEY not in json.dumps(out) and HOOK not in json.dumps(out)
    assert out["key"] == REDACTED and out["n"] == 3 and out["meta"]["note"] == f"sent to {REDACTED}"


def test_short_needles_are_ignored_so_nothing_else_is_mangled() -> None:
    assert redact("a b c", ["b"]) == "a b c"


async def test_the_client_never_returns_our_key_or_webhook_url() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(
            200, json={"status": "processing", "meta": body, "message": f"key {body['key']}"}
        )

    client = ModelsLabClient(
        "https://modelslab.invalid/api/v6", KEY, transport=httpx.MockTransport(echo)
    )
    reply = await client.submit({"image": "https://x.invalid/i.png"}, HOOK, 42)
    assert KEY not in json.dumps(reply.raw) and HOOK not in json.dumps(reply.raw)
    assert reply.message == f"key {REDACTED}"

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"message": f"Invalid key {KEY}"})

    client = ModelsLabClient(
        "https://modelslab.invalid/api/v6", KEY, transport=httpx.MockTransport(refuse)
    )
    try:
        await client.fetch(None, "1")
    except ProviderRejected as exc:
        assert KEY not in exc.message and REDACTED in exc.message
    else:
        raise AssertionError("expected a rejection")
    await client.aclose()


def test_values_bound_to_a_statement_never_reach_a_log_line() -> None:
    from service.logs import redact_text

    asyncpg = "invalid input for query argument $2: 2147483648 (value out of int32 range)"
    assert redact_text(asyncpg) == "invalid input for query argument $2: [redacted]"
    detail = "DETAIL:  Key (client_id, idempotency_key)=(3, order-17) already exists."
    assert redact_text(detail) == (
        "DETAIL:  Key (client_id, idempotency_key)=([redacted]) already exists."
    )
