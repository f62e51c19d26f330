"""The dashboard and /docs in headless Chromium (Debian's `chromium`, driven by Playwright's
Python package), as a person would look: jobs in every state made by the real service and
its simulator (a succeeded job archived, a callback that fails, a job the provider
refused) and by the store (queued, overdue, timed out, canceled); the overview, the search,
a job's page with its thumbnail and timeline, and its actions for the keys that may take
them. Screenshots go to $SCREENSHOT_DIR (`make screenshots` refreshes docs/), else the
test's temporary directory."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from service.app import create_app
from service.domain.changes import JobError
from service.domain.states import JobStatus
from tests.conftest import make_settings, now
from tests.e2e.conftest import FAST
from tests.factories import client_id, force, processing_job, queued_job, to
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

BODY = {
    "image": "https://example.invalid/in.png",
    "prompt": "a lighthouse",
    "width": 256,
    "height": 192,
}


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)


@dataclass
class World:
    url: str
    ops: str  # ops:read
    admin: str  # admin
    writer: str  # team-a's jobs:write and ops:read
    ids: dict[str, str]  # what each job is -> its public id
    track_ids: dict[str, int]


async def _receiver_ok(_request: Request) -> Response:
    return Response(status_code=204)


async def _receiver_broken(_request: Request) -> Response:
    return Response(status_code=500)


async def _until(http: httpx.AsyncClient, job_id: str, done: Any) -> dict[str, Any]:
    for _ in range(400):
        job = (await http.get(f"/v1/jobs/{job_id}")).json()
        if done(job):
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {job}")


@pytest.fixture
async def world(db_url: str, live: LiveServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """First the whole service with its simulator makes three jobs the real way; then an
    API-only server on the same database (so nothing moves under the browser) adds the rest."""
    receiver = LiveServer()
    await receiver.start(
        Starlette(
            routes=[
                Route("/ok", _receiver_ok, methods=["POST"]),
                Route("/broken", _receiver_broken, methods=["POST"]),
            ]
        )
    )
    outputs = str(tmp_path / "outputs")
    settings = make_settings(
        db_url,
        host="127.0.0.1",
        port=live.port,
        **FAST,
        sim_eta_seconds=0.2,
        eta_grace_seconds=30,
        output_store=outputs,
        allow_private_callbacks=True,
        callback_retry_schedule="0,3600",
        series_flush_seconds=0.1,
    )
    app = create_app(settings)
    await live.start(app)
    store = app.state.ctx.store
    raw, _ = await store.clients.create_key("team-a", ["jobs:write", "jobs:read"], now())
    ids: dict[str, str] = {}
    async with httpx.AsyncClient(
        base_url=live.url, headers={"Authorization": f"Bearer {raw}"}, timeout=10
    ) as http:
        for name, body, headers in [
            (
                "delivered",
                {**BODY, "callback_url": f"{receiver.url}/ok"},
                {"Idempotency-Key": "order-ok"},
            ),
            ("failing callback", {**BODY, "callback_url": f"{receiver.url}/broken"}, {}),
            ("refused", {**BODY, "image": "http://127.0.0.1:1/in.png"}, {}),
        ]:
            created = await http.post("/v1/jobs", json=body, headers=headers)
            assert created.status_code == 202, created.text
            ids[name] = created.json()["id"]
        await _until(
            http,
            ids["delivered"],
            lambda j: j["archive_status"] == "done" and j["callback_status"] == "delivered",
        )
        await _until(http, ids["failing callback"], lambda j: j["callback_status"] == "failing")
        await _until(http, ids["refused"], lambda j: j["status"] == "failed")
    await live.stop()
    await receiver.stop()

    app = create_app(
        # no flush of the series while the browser looks: the charts hold the first part's
        make_settings(db_url, port=live.port, output_store=outputs, series_flush_seconds=3600),
        run_workers=False,
    )
    await live.start(app)
    store = app.state.ctx.store
    t = now()
    ids["queued"] = (await queued_job(store, await client_id(store, "team-b"), t)).public_id
    team_a = await client_id(store, "team-a")
    overdue = await processing_job(store, team_a, t - timedelta(minutes=10))
    await force(store, overdue.id, eta_at=t - timedelta(minutes=9))
    ids["overdue"] = overdue.public_id
    late = await processing_job(store, team_a, t - timedelta(hours=2))
    error = JobError("timed_out", "no result within an hour")
    await store.changes.apply_change(late, to(JobStatus.TIMED_OUT, "sweeper", error=error), t)
    ids["timed out"] = late.public_id
    canceled = await queued_job(store, team_a, t)
    await store.changes.apply_change(canceled, to(JobStatus.CANCELED, "api"), t)
    ids["canceled"] = canceled.public_id
    ops, _ = await store.clients.create_key("ops", ["ops:read"], t)
    admin, _ = await store.clients.create_key("ops-admin", ["admin"], t)
    writer, _ = await store.clients.create_key("team-a", ["jobs:write", "ops:read"], t)
    track_ids = {
        name: (await store.jobs.get_job(public_id)).id  # type: ignore[union-attr]
        for name, public_id in ids.items()
    }
    return World(live.url, ops, admin, writer, ids, track_ids)


async def _open(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    assert not errors, errors
    return page, requests


async def _rows(page: Page, selector: str) -> list[str]:
    rows: list[str] = await page.locator(f"{selector} tr").evaluate_all(
        "rs => rs.map(r => r.dataset.job)"
    )
    return rows


async def _search(page: Page, q: str = "", state: str = "", client: str = "") -> list[str]:
    await page.fill("#q", q)
    await page.select_option("#state", state)
    await page.fill("#client", client)
    before = int(await page.get_attribute("#jobs", "data-searched") or 0)
    await page.click("#search button[type=submit]")
    await page.wait_for_selector(f'#jobs[data-searched="{before + 1}"]', state="attached")
    return await _rows(page, "#jobs")


async def test_the_overview_shows_every_state_and_finds_jobs(
    world: World, browser: Browser, shots: Path
) -> None:
    page, requests = await _open(browser, f"{world.url}/dashboard#key={world.ops}")
    await page.wait_for_selector('#counts .card[data-label="canceled"]')
    counts = {
        label: await page.text_content(f'#counts .card[data-label="{label}"] .n')
        for label in ("queued", "processing", "succeeded", "failed", "timed_out", "canceled")
    }
    assert counts == {
        "queued": "1",
        "processing": "1",
        "succeeded": "2",
        "failed": "1",
        "timed_out": "1",
        "canceled": "1",
    }
    assert await page.text_content('#health .card[data-label="overdue"] .n') == "1"
    assert await page.text_content('#health .card[data-label="callbacks failing"] .n') == "1"
    assert await page.text_content('#archive .card[data-label="outputs stored"] .n') == "2"
    # Over time: seven charts drawn by the vendored uPlot from /v1/stats/series; the
    # throughput chart's first series counts the three jobs the API created.
    await page.wait_for_function(
        "() => document.querySelector('#chart-throughput')?.dataset.total?.startsWith('3,')"
    )
    assert await page.locator("#charts .chart canvas").count() == 7
    titles = await page.locator("#charts .u-title").all_text_contents()
    assert titles == [
        "Jobs per step",
        "Creation to success (s)",
        "Results: webhook or poll",
        "Webhook lateness after eta (s)",
        "Provider errors and 429s",
        "Callback attempts",
        "Output archive",
    ]
    callbacks = await page.get_attribute("#chart-callbacks", "data-total")
    assert callbacks is not None and callbacks.split(",")[:2] == ["1", "1"]  # delivered, failing
    archived = await page.get_attribute("#chart-archive", "data-total")
    assert archived is not None and archived.split(",")[:2] == ["2", "0"]  # stored, not stored
    await page.click('#windows button[data-window="7d"]')
    await page.wait_for_selector('#chart-throughput[data-window="7d"]')
    await page.click('#windows button[data-window="1h"]')
    await page.wait_for_selector('#chart-throughput[data-window="1h"]')
    usage = await page.text_content("#usage")
    assert usage is not None and "team-a" in usage
    # Overdue first among processing jobs; failures with the provider's message.
    assert await _rows(page, "#processing") == [world.ids["overdue"]]
    assert "OVERDUE" in (await page.text_content("#processing") or "")
    failures = await page.text_content("#failures") or ""
    assert world.ids["refused"] in failures and "may not be fetched" in failures
    assert world.ids["timed out"] in failures and "no result within an hour" in failures
    # The job list: every job, newest first; then found by each of its names, and filtered.
    await page.wait_for_function("() => document.querySelectorAll('#jobs tr').length === 7")
    await page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    assert await _search(page, q="order-ok") == [world.ids["delivered"]]
    tracked = str(world.track_ids["failing callback"])
    assert await _search(page, q=tracked) == [world.ids["failing callback"]]
    assert await _search(page, q=world.ids["refused"]) == [world.ids["refused"]]
    assert await _search(page, state="failed") == [world.ids["refused"]]
    assert await _search(page, client="team-b") == [world.ids["queued"]]
    assert await _search(page, state="queued", client="team-a") == []
    assert await _search(page, q="nothing-like-it") == []
    # Live: it polls, and says when it last heard from the service.
    status = await page.text_content("#status")
    assert status is not None and status.startswith("last heard from the service ")
    assert "stale" not in (await page.get_attribute("#status", "class") or "")
    # A row opens the job's page.
    await _search(page)
    await page.click(f'#jobs tr[data-job="{world.ids["refused"]}"]')
    await page.wait_for_selector(f'#actions[data-for^="{world.ids["refused"]}@"]')
    assert await page.is_visible("#job-view") and not await page.is_visible("#overview")
    # The key: in sessionStorage, gone from the address bar, in no URL sent.
    assert await page.evaluate("sessionStorage.getItem('outpaint-ops-key')") == world.ops
    assert "key=" not in page.url
    assert requests and all(world.ops not in url for url in requests)


async def test_a_job_page_shows_the_request_outputs_and_one_timeline(
    world: World, browser: Browser, shots: Path
) -> None:
    job_id = world.ids["delivered"]
    page, requests = await _open(browser, f"{world.url}/dashboard#key={world.ops}&job={job_id}")
    await page.wait_for_selector(f'#actions[data-for^="{job_id}@"]')
    assert await page.text_content("#job-id") == job_id
    assert await page.text_content("#job-state") == "succeeded"
    assert await page.text_content('#job-facts dd[data-fact="track id"]') == str(
        world.track_ids["delivered"]
    )
    callback = await page.text_content('#job-facts dd[data-fact="callback"]') or ""
    assert callback.endswith("/ok (delivered)")
    # done for its client when settled: the same moment the API gives
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {world.ops}"}) as http:
        settled_at = (await http.get(f"{world.url}/v1/jobs/{job_id}")).json()["settled_at"]
    assert (
        settled_at and await page.text_content('#job-facts dd[data-fact="settled"]') == settled_at
    )
    request = await page.text_content("#job-request") or ""
    assert '"prompt": "a lighthouse"' in request and '"width": 256' in request
    # The archived output, fetched with the key and shown from a blob: URL, at its size.
    image = page.locator('#job-outputs .output[data-output="0"] img')
    await page.wait_for_function(
        "() => document.querySelector('#job-outputs img')?.naturalWidth === 256"
    )
    assert (await image.get_attribute("src") or "").startswith("blob:")
    assert any(url.endswith(f"/v1/jobs/{job_id}/outputs/0") for url in requests)
    # One timeline across both directions, raw bodies folded until asked for.
    directions = await page.locator("#timeline td.dir").all_text_contents()
    for way in (
        "client → service",
        "service → provider",
        "provider → service",
        "service → output store",
        "service → client",
    ):
        assert way in directions, directions
    kinds = await page.locator("#timeline tr[data-kind]").evaluate_all(
        "rs => rs.map(r => r.dataset.kind)"
    )
    assert kinds[0] == "created" and "webhook" in kinds and "callback_attempt" in kinds
    assert await page.locator("#timeline details[open]").count() == 0
    webhook = page.locator('#timeline tr[data-kind="webhook"] details').first
    assert await webhook.locator("pre").is_hidden()
    assert (await webhook.locator("summary").text_content()) == "status success"
    await webhook.locator("summary").click()
    raw = await webhook.locator("pre").text_content() or ""
    assert '"status": "success"' in raw and f'"track_id": {world.track_ids["delivered"]}' in raw
    attempt = page.locator('#timeline tr[data-kind="callback_attempt"] summary').first
    assert (await attempt.text_content() or "").startswith("attempt 1: delivered (HTTP 204)")
    # An ops:read key may look, not act: no buttons.
    assert await page.locator("#actions button").count() == 0
    await page.screenshot(path=str(shots / "job.png"), full_page=True)
    assert all(world.ops not in url for url in requests)


async def _job_page(page: Page, world: World, key: str, name: str) -> list[str]:
    """Open a job's page with `key`; the ids of the action buttons it shows."""
    job_id = world.ids[name]
    await page.goto(f"{world.url}/dashboard#key={key}&job={job_id}")
    await page.wait_for_selector(f'#actions[data-for^="{job_id}@"]')
    return await page.locator("#actions button").evaluate_all("bs => bs.map(b => b.id)")


async def test_actions_show_for_keys_that_may_take_them_and_are_recorded(
    world: World, browser: Browser
) -> None:
    page, _ = await _open(browser, f"{world.url}/dashboard")
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))  # yes, switch keys
    # team-a's writer (jobs:write, ops:read): its own jobs only; what the job's state allows.
    assert await _job_page(page, world, world.writer, "overdue") == ["cancel", "refresh-now"]
    assert await _job_page(page, world, world.writer, "queued") == []  # team-b's
    assert await _job_page(page, world, world.writer, "failing callback") == ["replay"]
    assert await _job_page(page, world, world.writer, "refused") == []  # no callback
    # admin: any client's. Replay the failing callback, then cancel the overdue job; each is
    # an event naming the key's prefix.
    assert await _job_page(page, world, world.admin, "queued") == ["cancel"]
    assert await _job_page(page, world, world.admin, "failing callback") == ["replay"]
    prefix = (
        await httpx.AsyncClient(base_url=world.url).get(
            "/v1/me", headers={"Authorization": f"Bearer {world.admin}"}
        )
    ).json()["key_prefix"]
    await page.click("#replay")
    await page.wait_for_selector('#timeline tr[data-kind="callback_replay"]')
    assert await page.text_content("#action-result") == "Replay callback: done"
    replay = page.locator('#timeline tr[data-kind="callback_replay"] summary')
    assert await replay.text_content() == f"replayed by {prefix}"
    assert await _job_page(page, world, world.admin, "overdue") == ["cancel", "refresh-now"]
    await page.click("#cancel")
    await page.wait_for_selector("#job-state.canceled")
    action = page.locator('#timeline tr[data-kind="action"] summary')
    assert await action.text_content() == f"cancel by {prefix}"
    await page.wait_for_function("() => document.querySelectorAll('#actions button').length === 0")


async def test_a_link_with_another_key_asks_before_switching(
    world: World, browser: Browser
) -> None:
    page, _ = await _open(browser, f"{world.url}/dashboard#key={world.ops}")
    await page.wait_for_selector('#counts .card[data-label="succeeded"]')
    asked: list[str] = []
    answers = [False, True]  # say no, then yes

    async def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        await (dialog.accept() if answers.pop(0) else dialog.dismiss())

    page.on("dialog", lambda d: asyncio.ensure_future(answer(d)))
    in_use = "() => sessionStorage.getItem('outpaint-ops-key')"
    for _ in range(2):
        await page.evaluate("k => { location.hash = 'key=' + k }", world.admin)
        await page.wait_for_function("() => location.hash === ''")  # the key left the URL
    assert len(asked) == 2 and world.admin[:12] in asked[0] and world.ops[:12] in asked[0]
    assert await page.evaluate(in_use) == world.admin  # kept after no, switched after yes
    # the same key again asks nothing
    await page.evaluate("k => { location.hash = 'key=' + k }", world.admin)
    await page.wait_for_function("() => location.hash === ''")
    assert len(asked) == 2


async def test_the_dashboard_is_never_framed_and_runs_only_its_own_scripts(
    world: World, browser: Browser
) -> None:
    # another site that frames it gets nothing of it (Chromium's error page instead)
    framer = f'<iframe id="f" src="{world.url}/dashboard"></iframe>'

    async def framing(_request: Request) -> Response:
        return HTMLResponse(framer)

    site = LiveServer()
    await site.start(Starlette(routes=[Route("/", framing)]))
    try:
        other = await browser.new_page()
        await other.goto(f"http://localhost:{site.port}/")
        await other.wait_for_load_state("load")
        frame = await (await other.wait_for_selector("#f")).content_frame()
        assert frame is not None  # Chromium shows its own error page in it, not ours
        assert await frame.query_selector("#counts") is None
    finally:
        await site.stop()
    page, _ = await _open(browser, f"{world.url}/dashboard#key={world.ops}")
    response = await page.goto(f"{world.url}/dashboard")
    assert response is not None
    csp = response.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and script_src.count("'sha256-") == 2
    assert "frame-ancestors 'none'" in csp and response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    await page.wait_for_selector('#counts .card[data-label="succeeded"]')  # the scripts ran


async def test_a_wrong_key_says_so(db_url: str, live: LiveServer, browser) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(db_url, port=live.port), run_workers=False)
    await live.start(app)
    page = await browser.new_page()
    await page.goto(f"{live.url}/dashboard")
    await page.fill("#key", "opj_wrong")
    await page.click("#key-form button[type=submit]")
    await page.wait_for_selector("#error:not(:empty)")
    assert "401" in await page.text_content("#error")


async def test_docs_render_offline_from_packaged_assets(
    db_url: str, live: LiveServer, browser
) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(db_url, port=live.port), run_workers=False)
    await live.start(app)
    page = await browser.new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live.url) else None)
    await page.goto(f"{live.url}/docs")
    await page.get_by_text("/v1/jobs/{job_id}/events", exact=True).first.wait_for(timeout=15000)
    assert "Outpaint Jobs" in await page.content()
    assert outside == []  # no CDN
