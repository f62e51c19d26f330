"""The dashboard as `make serve` gives it: `outpaint-jobs migrate`, then `outpaint-jobs
serve` as a real process with its defaults (the built-in simulator, outputs archived to
./outputs), the admin key its first start prints put in the fragment, and each view opened
in headless Chromium."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.live import free_port
from tests.processes import clean_env, wait_healthy

pytestmark = pytest.mark.e2e


async def test_each_view_works_from_make_serve(
    db_url: str, tmp_path: Path, browser: Browser
) -> None:
    port = free_port()
    env = clean_env()
    del env["OUTPUT_STORE"]  # the default: ./outputs, here the test's directory
    env.update(DATABASE_URL=db_url, PORT=str(port), SIM_ETA_SECONDS="0.2")
    command = [sys.executable, "-m", "service"]
    migrated = subprocess.run(
        [*command, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    serve = subprocess.Popen(
        [*command, "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert serve.stdout is not None
        printed = ""
        while "opj_" not in printed:  # the key's own line, after a line saying what it is
            line = await asyncio.to_thread(serve.stdout.readline)
            assert line, "serve printed no key"
            printed = line
        found = re.search(r"opj_\S+", printed)
        assert found, printed
        key = found.group(0)
        await wait_healthy(base)
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
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=20)
