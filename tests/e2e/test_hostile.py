"""Hostile input, on a real uvicorn, on SQLite and PostgreSQL: a hostile client, a hostile
provider reply or a stray request never produces a 5xx, a token in a log, a stored value
that later breaks a read, or a request from the server to an address the operator did not
allow. (That no test process reaches past loopback is checked for every test by the
suite's loopback guard, tests/loopback/.)"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from freezegun import freeze_time
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.app import create_app
from service.clock import utcnow
from service.domain.decisions import WEBHOOK_BODIES_KEPT
from service.domain.tokens import make_token
from service.metrics import WEBHOOKS
from tests.conftest import make_settings
from tests.e2e.conftest import FAST
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

WEBHOOK_SECRET = "hostile-webhook-secret"
PROVIDER_KEY = "sk-hostile-provider-key-0451"
BODY = {"image": "https://images.example.invalid/in.png", "prompt": "x", "width": 64, "height": 64}


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(out, format="PNG")
    return out.getvalue()


def bomb_png() -> bytes:
    """A small PNG whose header claims 100,000 × 100,000 pixels (IHDR and its CRC rewritten)."""
    data = bytearray(png((16, 16)))
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


# --- a loopback server that stands for something inside the operator's network -------------


@dataclass
class Internal:
    """Records every request it gets: none must come from the service."""

    seen: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def anything(request: Request) -> Response:
            self.seen.append(f"{request.method} {request.url.path}")
            if request.url.path.endswith(".png"):
                return Response(png((32, 32)), media_type="image/png")
            return JSONResponse({"internal": True})

        return Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])


# --- a provider that answers whatever the test scripts -------------------------------------


@dataclass
class Script:
    """Replies in order (the last one repeats); every call recorded as (path, body)."""

    submit: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    fetch: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def answer(request: Request) -> Response:
            path = request.url.path
            self.calls.append(path)
            replies = self.submit if path.endswith("/outpaint") else self.fetch
            code, body, headers = replies.pop(0) if len(replies) > 1 else replies[0]
            return JSONResponse(body, code, headers=headers)

        return Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])])


# --- the service ------------------------------------------------------------------------------


@dataclass
class Svc:
    client: httpx.AsyncClient
    app: Starlette
    internal: Internal
    internal_url: str
    write: dict[str, str]  # jobs:write only
    owner: dict[str, str]  # jobs:write,jobs:read
    ops: dict[str, str]  # ops:read
    provider: Script | None = None

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    async def create(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.client.post("/v1/jobs", json=body or BODY, headers=self.owner)
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    async def job(self, job_id: str) -> dict[str, Any]:
        return (await self.client.get(f"/v1/jobs/{job_id}", headers=self.owner)).json()  # type: ignore[no-any-return]

    async def events(self, job_id: str) -> list[dict[str, Any]]:
        r = await self.client.get(f"/v1/jobs/{job_id}/events?limit=500", headers=self.owner)
        return r.json()["items"]  # type: ignore[no-any-return]

    async def until(self, job_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for _ in range(400):
            job = await self.job(job_id)
            if done(job):
                return job
            await asyncio.sleep(0.025)
        raise AssertionError(f"job never got there: {job}")

    def webhook(self, track_id: int) -> str:
        return f"/webhooks/modelslab/{make_token(WEBHOOK_SECRET, track_id)}"

    async def reads_all_answer(self) -> None:
        """Every read route still answers, for the tenant and for ops."""
        jobs = (await self.client.get("/v1/jobs?limit=100", headers=self.owner)).json()["items"]
        for headers in (self.owner, self.ops):
            r = await self.client.get("/v1/jobs?limit=100", headers=headers)
            assert r.status_code == 200, r.text
            for job in jobs[:5]:
                for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/events"):
                    assert (await self.client.get(path, headers=headers)).status_code == 200
        assert (await self.client.get("/v1/stats", headers=self.ops)).status_code == 200
        for path in ("/metrics", "/dashboard", "/readyz", "/healthz", "/openapi.json"):
            assert (await self.client.get(path)).status_code == 200, path


Start = Callable[..., Awaitable[Svc]]


@pytest.fixture
async def start(db_url: str, live: LiveServer) -> AsyncIterator[Start]:
    servers: list[LiveServer] = []
    clients: list[httpx.AsyncClient] = []

    async def run(script: Script | None = None, **overrides: object) -> Svc:
        internal = Internal()
        internal_server = LiveServer()
        await internal_server.start(internal.app())
        servers.append(internal_server)
        values: dict[str, object] = {**FAST, "webhook_secret": WEBHOOK_SECRET}
        if script is not None:
            provider_server = LiveServer()
            await provider_server.start(script.app())
            servers.append(provider_server)
            values.update(
                modelslab_api_key=PROVIDER_KEY,
                modelslab_base_url=f"{provider_server.url}/api/v6",
            )
        values.update(overrides)
        settings = make_settings(db_url, host="127.0.0.1", port=live.port, **values)
        app = create_app(settings)
        await live.start(app)
        store, clock = app.state.ctx.store, app.state.ctx.runtime.clock

        async def key(name: str, scopes: str) -> dict[str, str]:
            raw, _ = await store.clients.create_key(name, scopes.split(","), clock())
            return {"Authorization": f"Bearer {raw}"}

        client = httpx.AsyncClient(base_url=live.url, timeout=10)
        clients.append(client)
        return Svc(
            client,
            app,
            internal,
            internal_server.url,
            await key("team-a", "jobs:write"),
            await key("team-a", "jobs:write,jobs:read"),
            await key("ops", "ops:read"),
            script,
        )

    yield run
    for c in clients:
        await c.aclose()
    for s in servers:
        await s.stop()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    caplog.set_level(logging.DEBUG)
    return lambda: "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''} {r.stack_info or ''}"
        for r in caplog.records
    )


# --- 1. the simulator is not an open proxy ---------------------------------------------------

OUTPAINT = "/simulator/api/v6/image_editing/outpaint"


async def test_the_mounted_simulator_answers_only_its_own_key(start: Start) -> None:
    svc = await start()
    body = {"image": base64.b64encode(png((16, 16))).decode(), "base64": True}
    for key in (None, "", "simulator", "k", PROVIDER_KEY):
        r = await svc.client.post(OUTPAINT, json={**body, "key": key})
        assert r.status_code == 401, key
    r = await svc.client.post("/simulator/api/v6/image_editing/fetch/1", json={"key": "simulator"})
    assert r.status_code == 401


async def test_the_mounted_simulator_sends_no_webhook_and_fetches_no_image_inside(
    start: Start,
) -> None:
    svc = await start(sim_eta_seconds=0.05)
    key = svc.ctx.settings.simulator_key
    # A webhook to an address inside: accepted as a request, never sent.
    r = await svc.client.post(
        OUTPAINT,
        json={
            "key": key,
            "image": base64.b64encode(png((16, 16))).decode(),
            "webhook": f"{svc.internal_url}/anything",
            "track_id": 1,
        },
    )
    assert r.status_code == 200, r.text
    generation = r.json()["id"]
    assert generation >= 2**52  # 53 random bits: not guessable
    # An image inside: refused, never fetched; its output cannot be read back.
    r = await svc.client.post(OUTPAINT, json={"key": key, "image": f"{svc.internal_url}/x.png"})
    assert r.status_code == 400 and "may not be fetched" in r.json()["message"]
    for _ in range(40):
        if svc.app.state.simulator.webhooks_refused:
            break
        await asyncio.sleep(0.025)
    assert svc.app.state.simulator.webhooks_refused == 1
    assert svc.internal.seen == []
    # Its own outputs still render (from the base64 input).
    out = await svc.client.get(f"/simulator/outputs/{generation}.png")
    assert out.status_code == 200 and out.content.startswith(b"\x89PNG")
    assert (await svc.client.get("/simulator/outputs/1.png")).status_code == 404


async def test_the_simulator_refuses_bombs_oversize_images_and_bodies(start: Start) -> None:
    svc = await start()
    key = svc.ctx.settings.simulator_key
    for image in (png((1441, 16)), png((16, 2000))):
        r = await svc.client.post(
            OUTPAINT, json={"key": key, "image": base64.b64encode(image).decode()}
        )
        assert r.status_code == 400 and "at most 1440 px" in r.json()["message"]
    r = await svc.client.post(
        OUTPAINT, json={"key": key, "image": base64.b64encode(bomb_png()).decode()}
    )
    assert r.status_code == 400 and "decompression bomb" in r.json()["message"]
    big = {"key": key, "image": "A" * (svc.ctx.settings.max_body_bytes + 10)}
    assert (await svc.client.post(OUTPAINT, json=big)).status_code == 413
    assert (await svc.client.post(OUTPAINT, content=b'{"key": NaN}')).status_code == 400


# --- 2. one bad job never breaks reads ---------------------------------------------------------

HOSTILE_VALUES = {
    "nan": "NaN",
    "infinity": "Infinity",
    "minus_infinity": "-Infinity",
    "overflow": "1e999",
    "lone_surrogate": '"\\ud800"',
    "nul": '"a\\u0000b"',
    "long_integer": "9" * 5000,
    "int_past_int64": "9" * 20,
    "deep": "[" * 40 + "]" * 40,
    "very_deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_VALUES))
async def test_every_hostile_value_is_refused_before_it_is_stored(
    start: Start, logged: Callable[[], str], name: str
) -> None:
    svc = await start(sim_eta_seconds=60)
    value = HOSTILE_VALUES[name]
    job = await svc.create()
    bodies = [
        '{"image": "https://images.example.invalid/a.png", "metadata": {"x": VALUE}}',
        '{"image": "https://images.example.invalid/a.png", "prompt": VALUE}',
    ]
    if value.startswith('"'):  # a string: also as a key
        bodies.append('{"image": "https://images.example.invalid/a.png", "metadata": {VALUE: 1}}')
    for template in bodies:
        body = template.replace("VALUE", value)
        r = await svc.client.post(
            "/v1/jobs",
            content=body,
            headers={**svc.owner, "content-type": "application/json"},
        )
        assert r.status_code in (400, 422), (body[:80], r.status_code, r.text[:200])
        assert r.headers["content-type"] == "application/problem+json"
    webhook = (
        (
            '{"status": "success", "output": ["https://cdn.example.invalid/o.png"], '
            '"track_id": TRACK, "meta": {"x": VALUE}}'
        )
        .replace("TRACK", str(job["track_id"]))
        .replace("VALUE", value)
    )
    r = await svc.client.post(svc.webhook(job["track_id"]), content=webhook)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    listed = (await svc.client.get("/v1/jobs", headers=svc.owner)).json()["items"]
    assert [j["id"] for j in listed] == [job["id"]]  # nothing else was stored
    assert (await svc.job(job["id"]))["webhooks"] == 0
    await svc.reads_all_answer()
    assert WEBHOOK_SECRET not in logged()


# --- 3. no unhandled parse errors ----------------------------------------------------------------


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_odd_parameters_and_paths_answer_4xx(start: Start, logged: Callable[[], str]) -> None:
    svc = await start(sim_eta_seconds=60)
    job = await svc.create()
    token = make_token(WEBHOOK_SECRET, job["track_id"])
    gets = [
        f"/v1/jobs?cursor={cursor('id:²')}",
        f"/v1/jobs?cursor={cursor('id:' + '9' * 25)}",
        "/v1/jobs?cursor=" + "A" * 5000,
        "/v1/jobs?limit=²",
        "/v1/jobs?limit=" + "9" * 5000,
        "/v1/jobs?limit=-1",
        "/v1/jobs?status=%00",
        "/v1/stats?window_seconds=²",
        "/v1/stats?window_seconds=" + "9" * 5000,
        "/v1/stats?client=%00",
        "/v1/stats?client=" + "x" * 5000,
        "/v1/jobs/job_%00",
        "/v1/jobs/%C2%B2",
        "/v1/jobs/" + "9" * 25,
        f"/v1/jobs/{job['id']}/events?cursor={cursor('id:²')}",
        f"/v1/jobs/{job['id']}/events?limit=²",
    ]
    for path in gets:
        headers = svc.ops if path.startswith("/v1/stats") else svc.owner
        r = await svc.client.get(path, headers=headers)
        assert 400 <= r.status_code < 500, (path[:60], r.status_code, r.text[:200])
        assert r.headers["content-type"] == "application/problem+json"
    posts: list[tuple[str, bytes]] = [
        ("/webhooks/modelslab/%C2%B2.abc", b"{}"),
        ("/webhooks/modelslab/" + "9" * 25 + ".abc", b"{}"),
        ("/webhooks/modelslab/%00", b"{}"),
        (f"/webhooks/modelslab/{token}", b'{"status": "success", "track_id": "\xc2\xb2"}'),
        (
            f"/webhooks/modelslab/{token}",
            b'{"status": "success", "track_id": ' + b"9" * 5000 + b"}",
        ),
        (f"/webhooks/modelslab/{token}", b"[" * 100_000),
        (f"/webhooks/modelslab/{token}", b'{"status": "success", "message": "\\u0000"}'),
        (f"/webhooks/modelslab/{token}", b'{"status": "\\udfff"}'),
        ("/v1/jobs/job_%00/cancel", b""),
        ("/v1/jobs/job_%00/refresh", b""),
        ("/v1/jobs/%C2%B2/callbacks/replay", b""),
    ]
    for path, body in posts:
        r = await svc.client.post(path, content=body, headers=svc.owner)
        assert 400 <= r.status_code < 500, (path[:60], body[:40], r.status_code, r.text[:200])
    for url in (
        "http://a..b.invalid/cb",
        "http://" + "a" * 64 + ".invalid/cb",
        "http://.invalid/cb",
        "http://hooks.example.invalid\u0000/cb",
        "http://hooks.example.invalid:99999/cb",
        "http://[::1/cb",
    ):
        r = await svc.client.post("/v1/jobs", json={**BODY, "callback_url": url}, headers=svc.owner)
        assert r.status_code in (400, 422), (url, r.status_code, r.text[:200])
    for idempotency_key in (b"a\x85b", b"a\x7fb", b"x" * 201):
        r = await svc.client.post(
            "/v1/jobs", json=BODY, headers={**svc.owner, "Idempotency-Key": idempotency_key}
        )
        assert r.status_code == 400, (idempotency_key, r.text)
    await svc.reads_all_answer()
    assert token not in logged()


# --- 4. no token, key or secret in any log line --------------------------------------------------


async def test_a_500_on_the_webhook_route_logs_no_token(
    start: Start, logged: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = await start(sim_eta_seconds=60)
    job = await svc.create()
    token = make_token(WEBHOOK_SECRET, job["track_id"])
    raw_key = svc.owner["Authorization"].removeprefix("Bearer ")

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"store down while handling {token} for {raw_key}")

    monkeypatch.setattr(svc.ctx.store.changes, "record_webhook", broken)
    r = await svc.client.post(f"/webhooks/modelslab/{token}", json={"status": "success"})
    assert r.status_code == 500 and token not in r.text
    text = logged()
    assert "store down while handling" in text  # the traceback was logged...
    assert token not in text and raw_key not in text  # ...with the secrets cut out
    assert WEBHOOK_SECRET not in text


# --- 5. a leaked webhook token stops being useful --------------------------------------------


async def test_a_token_expires_a_day_after_its_job_finished_and_bodies_are_capped(
    start: Start,
) -> None:
    svc = await start(sim_eta_seconds=60, eta_grace_seconds=600)
    job = await svc.create()
    await svc.until(job["id"], lambda j: j["status"] == "processing")
    url = svc.webhook(job["track_id"])
    done = {"status": "success", "output": ["https://cdn.example.invalid/o.png"]}
    for _ in range(WEBHOOK_BODIES_KEPT + 5):
        r = await svc.client.post(url, json={**done, "track_id": job["track_id"]})
        assert r.status_code == 200
    finished = await svc.job(job["id"])
    assert finished["status"] == "succeeded" and finished["webhooks"] == WEBHOOK_BODIES_KEPT + 5
    kinds = [e["kind"] for e in await svc.events(job["id"])]
    assert kinds.count("webhook") == WEBHOOK_BODIES_KEPT  # later ones only counted
    expired_before = WEBHOOKS.labels("expired")._value.get()
    later = utcnow() + timedelta(hours=24, minutes=1)
    with freeze_time(later, real_asyncio=True):
        r = await svc.client.post(url, json={**done, "track_id": job["track_id"]})
        assert r.status_code == 404 and "track_id" not in r.text
        unknown = await svc.client.post(
            svc.webhook(job["track_id"] + 10_000), json={"status": "success"}
        )
        assert unknown.json() == r.json()  # refused like an unknown token
    assert WEBHOOKS.labels("expired")._value.get() == expired_before + 1
    assert (await svc.job(job["id"]))["webhooks"] == WEBHOOK_BODIES_KEPT + 5


# --- 6. provider replies are bounded -----------------------------------------------------------


def processing(**extra: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 200, {"status": "processing", "id": 77, "eta": 1, **extra}, {}


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_an_enormous_eta_is_clamped_to_the_deadline(start: Start) -> None:
    script = Script(submit=[processing(eta=1e12)], fetch=[processing()])
    svc = await start(script, job_timeout_seconds=3600)
    job = await svc.create()
    job = await svc.until(job["id"], lambda j: j["status"] == "processing")
    await asyncio.sleep(0.3)  # a resubmission would show by now
    job = await svc.job(job["id"])
    deadline = parse(job["submitted_at"]) + timedelta(seconds=3600)
    assert job["provider_id"] == "77" and parse(job["next_poll_at"]) <= deadline
    assert parse(job["eta_at"]) <= deadline
    assert script.calls.count("/api/v6/image_editing/outpaint") == 1


async def test_an_enormous_retry_after_is_clamped_to_the_deadline(start: Start) -> None:
    script = Script(submit=[(429, {"status": "error", "retry_after": 1e12}, {})])
    svc = await start(script, job_timeout_seconds=3600)
    job = await svc.create()
    await svc.until(job["id"], lambda j: parse(j["next_poll_at"]) > parse(j["created_at"]))
    job = await svc.job(job["id"])
    assert job["status"] == "queued"
    assert parse(job["next_poll_at"]) <= parse(job["created_at"]) + timedelta(seconds=3600)


async def test_an_error_that_says_the_queue_is_full_is_retried_like_a_429(start: Start) -> None:
    full = (
        200,
        {"status": "error", "message": "Rate limit exceeded. Maximum 5 queued requests allowed."},
        {},
    )
    script = Script(submit=[full, processing()], fetch=[processing()])
    svc = await start(script)
    job = await svc.create()
    job = await svc.until(job["id"], lambda j: j["status"] != "queued")
    assert job["status"] == "processing" and job["error"] is None
    errors = [e["detail"] for e in await svc.events(job["id"]) if e["kind"] == "submit_error"]
    assert errors and errors[0]["kind"] == "rate_limited"


async def test_a_retry_after_date_is_honoured(start: Start) -> None:
    when = utcnow().replace(microsecond=0) + timedelta(seconds=120)
    later = (
        503,
        {"status": "error", "message": "busy"},
        {"Retry-After": format_datetime(when, usegmt=True)},
    )
    svc = await start(Script(submit=[later]))
    job = await svc.create()
    job = await svc.until(job["id"], lambda j: parse(j["next_poll_at"]) > parse(j["created_at"]))
    assert abs((parse(job["next_poll_at"]) - when).total_seconds()) < 5


@pytest.mark.parametrize("output", ["file:///etc/passwd", "javascript:alert(1)", "//x.invalid/a"])
async def test_outputs_that_are_not_http_are_refused_and_the_job_keeps_waiting(
    start: Start, output: str
) -> None:
    script = Script(
        submit=[processing()],
        fetch=[(200, {"status": "success", "id": 77, "output": [output]}, {})],
    )
    svc = await start(script, eta_grace_seconds=0)
    job = await svc.create()
    job = await svc.until(job["id"], lambda j: j["polls"] >= 1)
    r = await svc.client.post(
        svc.webhook(job["track_id"]),
        json={"status": "success", "output": [output], "track_id": job["track_id"]},
    )
    assert r.status_code == 200 and r.json()["applied"] is False
    job = await svc.job(job["id"])
    assert job["status"] == "processing" and job["output"] == []
    warnings = [
        e["detail"]["warning"] for e in await svc.events(job["id"]) if e["kind"] == "warning"
    ]
    assert "malformed_reply:output_not_http" in warnings


async def test_a_fetch_result_that_only_starts_with_the_providers_host_is_not_used(
    start: Start,
) -> None:
    script = Script(fetch=[processing()])
    svc = await start(script, eta_grace_seconds=0)
    base = httpx.URL(svc.ctx.settings.provider_base_url)
    lookalike = f"http://{base.host}:{base.port}.evil.invalid/steal"
    script.submit = [processing(fetch_result=lookalike)]
    job = await svc.create()
    job = await svc.until(job["id"], lambda j: j["polls"] >= 1)
    assert "/api/v6/image_editing/fetch/77" in script.calls
    assert all("steal" not in c for c in script.calls)


# --- 7. scopes and costs ----------------------------------------------------------------------


async def test_a_write_only_key_learns_nothing_through_cancel_or_refresh(start: Start) -> None:
    svc = await start(sim_eta_seconds=60)
    job = await svc.create()
    await svc.until(job["id"], lambda j: j["status"] == "processing")
    r = await svc.client.post(f"/v1/jobs/{job['id']}/refresh", headers=svc.write)
    assert r.status_code == 202 and r.content == b""
    r = await svc.client.post(f"/v1/jobs/{job['id']}/cancel", headers=svc.write)
    assert r.status_code == 204 and r.content == b""
    other = await svc.create()
    r = await svc.client.post(f"/v1/jobs/{other['id']}/cancel", headers=svc.owner)
    assert r.status_code == 200 and r.json()["status"] == "canceled"


async def test_refresh_polls_at_most_once_per_interval(start: Start) -> None:
    svc = await start(sim_eta_seconds=60, eta_grace_seconds=600, refresh_interval_seconds=30)
    job = await svc.create()
    await svc.until(job["id"], lambda j: j["status"] == "processing")
    first = await svc.client.post(f"/v1/jobs/{job['id']}/refresh", headers=svc.owner)
    assert first.status_code == 200 and first.json()["polls"] == 1
    second = await svc.client.post(f"/v1/jobs/{job['id']}/refresh", headers=svc.owner)
    assert second.status_code == 429
    assert 1 <= int(second.headers["retry-after"]) <= 30
    assert (await svc.job(job["id"]))["polls"] == 1
    simulator = svc.app.state.simulator
    assert sum(simulator.fetches.values()) == 1


async def test_events_are_paginated_like_jobs(start: Start) -> None:
    svc = await start(sim_eta_seconds=60, eta_grace_seconds=600)
    job = await svc.create()
    await svc.until(job["id"], lambda j: j["status"] == "processing")
    for _ in range(3):
        await svc.client.post(svc.webhook(job["track_id"]), json={"status": "processing"})
    everything = await svc.events(job["id"])
    assert len(everything) >= 6
    seen: list[dict[str, Any]] = []
    path = f"/v1/jobs/{job['id']}/events?limit=2"
    while True:
        page = (await svc.client.get(path, headers=svc.owner)).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        path = f"/v1/jobs/{job['id']}/events?limit=2&cursor={page['next_cursor']}"
    assert seen == everything
    assert math.ceil(len(everything) / 2) >= 3
