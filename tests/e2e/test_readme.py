"""The README's walk-through, run as written: its shell block (on a free port instead of
8000) against `outpaint-jobs serve` with its defaults (SQLite, the built-in simulator,
outputs kept in ./outputs), started the way `make serve` starts it. It needs no network:
the input is the simulator's own sample, and every Python process of the run refuses to
leave loopback."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.processes import made_serve
from tests.readme import block

pytestmark = pytest.mark.e2e


def walk_through() -> str:
    """The first shell block under the README's "One job, from create to output"."""
    return block("## One job, from create to output", "sh")


def test_the_walk_through_block_is_what_this_test_runs() -> None:
    block = walk_through()
    assert block.startswith("KEY=opj_...") and "API=http://127.0.0.1:8000\n" in block
    assert "simulator/samples/room.png" in block  # no public host in it
    assert not re.search(r"https?://(?!127\.0\.0\.1|'\$API)", block.replace("$API", "")), block


async def test_the_readme_walk_through_runs_offline(tmp_path: Path) -> None:
    assert shutil.which("curl"), "the walk-through uses curl"
    async with made_serve(tmp_path, SIM_ETA_SECONDS="0.5") as (url, key):
        script = walk_through().replace("KEY=opj_...", f"KEY={key}", 1)
        script = script.replace("http://127.0.0.1:8000", url)
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].strip() == "HTTP/1.1 201 Created", done.stdout[:500]
    job = json.loads(lines[1])
    assert job["status"] == "succeeded" and job["settled_at"] and job["archive_status"] == "done"
    [kept] = job["outputs"]
    assert kept["url"] == f"{url}/v1/jobs/{job['id']}/outputs/0"
    events = json.loads(lines[2])["items"]
    assert [e["kind"] for e in events][-1] == "archived"
    assert lines[3] == f"200 image/png {kept['bytes']} bytes"
    with Image.open(io.BytesIO((tmp_path / "out.png").read_bytes())) as image:
        assert image.format == "PNG" and image.size == (384, 256)
