"""Browsers over ASGI: event links (a key-less URL of one job's events, expiring, ended by
revoking the key that made it) and CORS for the origins CORS_ALLOW_ORIGINS names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from service.app import create_app
from service.logs import redact_text
from tests.api.test_jobs import BODY, assert_problem
from tests.conftest import Api, make_settings, now

ORIGIN = "http://localhost:5173"


async def _link(api: Api, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    job = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    r = await api.client.post(f"/v1/jobs/{job['id']}/event-links", headers=headers)
    assert r.status_code == 201, r.text
    return job["id"], r.json()


async def test_a_link_reads_its_job_events_without_a_key_until_it_expires(api: Api) -> None:
    headers = await api.key()
    assert api.ctx is not None
    work = api.ctx.runtime
    before = work.clock()
    job_id, link = await _link(api, headers)
    url = urlsplit(link["url"])
    assert f"{url.scheme}://{url.netloc}" == api.settings.base_url
    assert url.path == f"/v1/jobs/{job_id}/events" and url.query.startswith("token=evl_")
    expires = datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=899) <= expires - before <= timedelta(seconds=901)
    page = await api.client.get(f"{url.path}?{url.query}")  # no Authorization header
    assert page.status_code == 200 and page.json()["items"][0]["kind"] == "created"
    # the token never reaches a log line
    assert "evl_" in link["url"] and url.query.split("=", 1)[1] not in redact_text(link["url"])
    # once expired (an injected clock), a new connection is refused
    real = work.clock
    work.clock = lambda: real() + timedelta(seconds=901)
    try:
        assert_problem(await api.client.get(f"{url.path}?{url.query}"), 401)
    finally:
        work.clock = real


async def test_a_link_is_for_its_job_and_its_key_only(api: Api) -> None:
    headers = await api.key()
    job_id, link = await _link(api, headers)
    other_id, _ = await _link(api, headers)
    url = urlsplit(link["url"])
    query = url.query
    # another job's path, a token changed by one character, a token of another shape
    assert_problem(await api.client.get(f"/v1/jobs/{other_id}/events?{query}"), 401)
    flipped = query[:-1] + ("A" if query[-1] != "A" else "B")
    assert_problem(await api.client.get(f"{url.path}?{flipped}"), 401)
    assert_problem(await api.client.get(f"{url.path}?token=evl_1.2.3.x"), 401)
    # read-only: it opens no other route
    assert_problem(await api.client.get(f"/v1/jobs/{job_id}?{query}"), 401)
    assert_problem(await api.client.post(f"/v1/jobs/{job_id}/cancel?{query}"), 401)
    # revoking the key that made it ends the link
    store = api.store
    prefix = headers["Authorization"].removeprefix("Bearer ")[:12]
    assert await store.clients.revoke_key(prefix, now())
    assert_problem(await api.client.get(f"{url.path}?{query}"), 401)


async def test_making_a_link_takes_a_reading_key_of_the_jobs_client(api: Api) -> None:
    headers = await api.key()
    job = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    path = f"/v1/jobs/{job['id']}/event-links"
    other = await api.key("team-b", "jobs:read")
    assert_problem(await api.client.post(path, headers=other), 404)
    writer = await api.key("team-a", "jobs:write")
    assert_problem(await api.client.post(path, headers=writer), 403)
    assert_problem(await api.client.post(path), 401)
    ops = await api.key("ops", "ops:read")
    assert (await api.client.post(path, headers=ops)).status_code == 201


@pytest.fixture
async def cors_api(db_url: str) -> AsyncIterator[Api]:
    settings = make_settings(db_url, cors_allow_origins=f"{ORIGIN}, https://app.example.invalid/")
    app = create_app(settings, run_workers=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app.state.ctx.store, settings, app.state.ctx)


async def test_cors_answers_only_the_origins_named(cors_api: Api) -> None:
    api = cors_api
    headers = await api.key()
    preflight = await api.client.options(
        "/v1/jobs",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, prefer, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"authorization", "prefer", "idempotency-key", "last-event-id"} <= {
        h.strip() for h in allowed.split(",")
    }
    created = await api.client.post(
        "/v1/jobs", json=BODY, headers={**headers, "Origin": "https://app.example.invalid"}
    )
    assert created.status_code == 202
    assert created.headers["access-control-allow-origin"] == "https://app.example.invalid"
    exposed = {h.strip() for h in created.headers["access-control-expose-headers"].split(",")}
    assert {"Location", "ETag", "Retry-After", "Preference-Applied"} <= exposed
    # an error answers with the CORS headers too (a page can read the problem)
    refused = await api.client.get("/v1/jobs", headers={"Origin": ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN
    # an origin not named: no CORS headers (the browser keeps the answer from the page)
    stranger = await api.client.get(
        "/v1/jobs", headers={**headers, "Origin": "https://evil.example.invalid"}
    )
    assert "access-control-allow-origin" not in stranger.headers
    bad = await api.client.options(
        "/v1/jobs",
        headers={"Origin": "https://evil.example.invalid", "Access-Control-Request-Method": "POST"},
    )
    assert bad.status_code == 400


async def test_without_cors_origins_no_cors_headers_at_all(api: Api) -> None:
    r = await api.client.get("/v1/jobs", headers={**await api.key(), "Origin": ORIGIN})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    preflight = await api.client.options(
        "/v1/jobs", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
