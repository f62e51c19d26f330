"""The dashboard and /docs in headless Chromium (Debian's `chromium`, driven by
Playwright's Python package): counts, recent failures, a job's events on click, and the
key never in a URL sent to the server."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from playwright.async_api import async_playwright

from service.app import create_app
from service.domain import archive
from service.domain.changes import JobError
from service.domain.states import JobStatus
from tests.conftest import make_settings, now
from tests.factories import client_id, force, processing_job, queued_job, to
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    assert shutil.which("chromium"), (
        "install Debian's chromium (apt-get install chromium); .ci/run does"
    )
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()


async def test_the_dashboard_shows_counts_failures_and_events(
    db_url: str, live: LiveServer, browser, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        db_url, port=live.port, output_store=str(tmp_path / "outputs"), series_flush_seconds=0.1
    )
    app = create_app(settings, run_workers=False)
    await live.start(app)
    store = app.state.ctx.store
    cid = await client_id(store, "team-a")
    t = now()
    await queued_job(store, cid, t)
    late = await processing_job(store, cid, t - timedelta(minutes=10))
    await force(store, late.id, eta_at=t - timedelta(minutes=9))
    failed = await processing_job(store, cid, t)
    await store.changes.apply_change(
        failed,
        to(
            JobStatus.FAILED,
            "webhook",
            error=JobError("provider_error", "NSFW content detected"),
        ),
        t,
    )
    done = await processing_job(store, cid, t - timedelta(seconds=30))
    await store.changes.apply_change(done, to(JobStatus.SUCCEEDED, "webhook", output=("u",)), t)
    # one archive given up on (an output that was not an image), one still pending
    [task] = await store.archives.claim_archives(t, "w", t + timedelta(seconds=60), 1)
    unstored = archive.Unstored(0, "u", "not_an_image")
    assert await store.archives.settle(task, "w", t, [unstored], ["x"])
    other = await processing_job(store, cid, t - timedelta(seconds=30))
    await store.changes.apply_change(other, to(JobStatus.SUCCEEDED, "webhook", output=("v",)), t)
    key, _ = await store.clients.create_key("ops", ["ops:read"], t)

    page = await browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(f"{live.url}/dashboard#key={key}")
    await page.wait_for_selector('#counts .card[data-label="failed"]')
    counts = {
        label: await page.text_content(f'#counts .card[data-label="{label}"] .n')
        for label in ("queued", "processing", "succeeded", "failed")
    }
    assert counts == {"queued": "1", "processing": "1", "succeeded": "2", "failed": "1"}
    archive_cards = {
        label: await page.text_content(f'#archive .card[data-label="{label}"] .n')
        for label in ("archive", "archives pending", "not archived: not_an_image")
    }
    assert archive_cards == {
        "archive": "on",
        "archives pending": "1",
        "not archived: not_an_image": "1",
    }
    assert await page.text_content('#health .card[data-label="overdue"] .n') == "1"
    assert await page.text_content('#health .card[data-label="completed last hour"] .n') == "3"
    assert await page.text_content('#health .card[data-label="provider"] .n') == "closed"
    # Over time: six charts drawn by the vendored uPlot from /v1/stats/series; the
    # throughput chart's first series counts the five jobs created above.
    await page.wait_for_function(
        "document.querySelector('#chart-throughput')?.dataset.total?.startsWith('5,')"
    )
    assert await page.locator("#charts .chart canvas").count() == 6
    titles = await page.locator("#charts .u-title").all_text_contents()
    assert titles == [
        "Jobs per step",
        "Creation to success (s)",
        "Results: webhook or poll",
        "Webhook lateness after eta (s)",
        "Provider errors and 429s",
        "Callback attempts",
    ]
    total = await page.get_attribute("#chart-throughput", "data-total")
    assert total is not None and total.split(",")[:3] == ["5", "2", "1"]  # created, ok, failed
    await page.click('#windows button[data-window="7d"]')
    await page.wait_for_selector('#chart-throughput[data-window="7d"]')
    assert await page.locator("#charts .chart canvas").count() == 6
    await page.click('#windows button[data-window="1h"]')
    await page.wait_for_selector('#chart-throughput[data-window="1h"]')
    # Live: it polls, and says when it last heard from the service.
    status = await page.text_content("#status")
    assert status is not None and status.startswith("last heard from the service ")
    assert "stale" not in (await page.get_attribute("#status", "class") or "")
    failures = await page.text_content("#failures")
    assert failed.public_id in failures and "NSFW content detected" in failures
    assert "OVERDUE" in await page.text_content("#processing")
    # Click a failure: its events appear.
    await page.click(f'#failures tr[data-job="{failed.public_id}"]')
    await page.wait_for_selector("#events tbody tr")
    events = await page.text_content("#events")
    assert "processing → failed" in events and "webhook" in events
    # The key: in sessionStorage, gone from the address bar, in no URL sent.
    assert await page.evaluate("sessionStorage.getItem('outpaint-ops-key')") == key
    assert "key=" not in page.url
    assert requests and all(key not in url for url in requests)
    await page.screenshot(path=str(live_screenshot()))


def live_screenshot():  # type: ignore[no-untyped-def]
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "outpaint-dashboard.png"


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
