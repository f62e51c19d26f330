"""The dashboard as `make serve` gives it: `outpaint-jobs migrate`, then `outpaint-jobs
serve` as a real process with its defaults (the built-in simulator, outputs archived to
./outputs), the admin key its first start prints put in the fragment, and each view opened
in headless Chromium."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.processes import made_serve

pytestmark = pytest.mark.e2e


async def test_each_view_works_from_make_serve(
    db_url: str, tmp_path: Path, browser: Browser
) -> None:
    async with made_serve(tmp_path, DATABASE_URL=db_url, SIM_ETA_SECONDS="0.2") as (base, key):
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http:
            body = {"image": "https://example.invalid/a.png", "width": 256, "height": 192}
            job = (await http.post("/v1/jobs", json=body)).json()
            for _ in range(200):
                job = (await http.get(f"/v1/jobs/{job['id']}")).json()
                if job["archive_status"] == "done":
                    break
                await asyncio.sleep(0.05)
            assert job["status"] == "succeeded" and job["archive_status"] == "done", job

        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{base}/dashboard#key={key}")
        await page.wait_for_selector('#counts .card[data-label="succeeded"]')
        assert await page.text_content('#counts .card[data-label="succeeded"] .n') == "1"
        await page.wait_for_selector(f'#jobs tr[data-job="{job["id"]}"]')
        await page.wait_for_function(
            "() => document.querySelectorAll('#charts canvas').length === 7"
        )
        await page.click(f'#jobs tr[data-job="{job["id"]}"]')
        await page.wait_for_selector(f'#actions[data-for^="{job["id"]}@"]')
        assert await page.text_content("#job-state") == "succeeded"
        await page.wait_for_function(
            "() => document.querySelector('#job-outputs img')?.naturalWidth === 256"
        )
        directions = await page.locator("#timeline td.dir").all_text_contents()
        assert {"client → service", "service → provider", "provider → service"} <= set(directions)
        await page.click("#back")
        await page.wait_for_selector("#overview:not([hidden])")
        assert not errors, errors
        assert (tmp_path / "outputs").is_dir()
