"""A real Prometheus (Debian's `prometheus`) on loopback for `make chaos`: it scrapes every
process of the service under test every 2 s and evaluates the project's alert rules
(deploy/prometheus/alerts.yml) with their `for:` durations shortened, so a drill of minutes
shows which alerts fire and when. The report says how they were shortened."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from bench.chaos_rig import free_port

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "alerts.yml"
SCRAPE_SECONDS = 2
FOR_DIVISOR = 10  # a rule's for: is cut to a tenth, and at least FOR_FLOOR
FOR_FLOOR_SECONDS = 15


def shortened(duration: str) -> str:
    """`10m` → `60s`, `5m` → `30s`, `1m` → `15s` (a tenth, at least 15 s)."""
    units = {"s": 1, "m": 60, "h": 3600}
    seconds = float(duration[:-1]) * units[duration[-1]]
    return f"{max(int(seconds / FOR_DIVISOR), min(FOR_FLOOR_SECONDS, int(seconds)))}s"


def rules_for_chaos(target: Path) -> None:
    """The project's rules, every `for:` shortened (the expressions as they are)."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        group["interval"] = f"{SCRAPE_SECONDS}s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = shortened(rule["for"])
    target.write_text(yaml.safe_dump(document, sort_keys=False))


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.proc = proc

    async def firing(self) -> set[str]:
        """The alerts firing now."""
        async with httpx.AsyncClient() as client:
            r = await client.get(
                f"{self.url}/api/v1/query",
                params={"query": 'ALERTS{alertstate="firing"}'},
                timeout=5,
            )
        data: list[dict[str, Any]] = r.json()["data"]["result"]
        return {item["metric"]["alertname"] for item in data}


def _start(
    binary: str, workdir: Path, targets: list[str], port: int
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    workdir.mkdir(parents=True, exist_ok=True)
    rules_for_chaos(workdir / "alerts.yml")
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_SECONDS}s",
        },
        "rule_files": [str(workdir / "alerts.yml")],
        "scrape_configs": [{"job_name": "outpaint-jobs", "static_configs": [{"targets": targets}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    return proc, log


@contextlib.asynccontextmanager
async def prometheus(workdir: Path, targets: list[str]) -> AsyncIterator[Prometheus]:
    """Prometheus scraping `targets` (host:port of each process) as job `outpaint-jobs`."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("make chaos needs Debian's prometheus (apt-get install prometheus)")
    port = free_port()
    proc, log = await asyncio.to_thread(_start, binary, workdir, targets, port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{url}/-/ready", timeout=1)).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("prometheus did not come up")
        yield Prometheus(url, proc)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        log.close()


class Watch:
    """Polls Prometheus while a drill runs: when each alert first fired, in seconds from
    the fault's start."""

    def __init__(self, prom: Prometheus) -> None:
        self.prom = prom
        self.fired: dict[str, float] = {}
        self.fault_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def fault_now(self) -> None:
        self.fault_at = time.monotonic()

    async def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.fired

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                for name in await self.prom.firing():
                    self.fired.setdefault(name, round(time.monotonic() - self.fault_at, 1))
            await asyncio.sleep(1)
