"""The service as `make chaos` runs it: the API, two workers and the standalone simulator as
real processes, a client creating jobs at a steady rate (honouring 503 + Retry-After), and
the count of what a fault cost once every accepted job has finished."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from service.store import Store
from service.store.migrate import upgrade
from service.store.tables import jobs
from tests.processes import STANDALONE_SIM, Proc, clean_env

BODY: dict[str, Any] = {
    "image": "https://images.example.invalid/chaos.png",
    "width": 64,
    "height": 64,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Outcome:
    name: str
    accepted: int = 0
    lost: int = 0
    misstated: int = 0
    second_generations: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    recovery_seconds: float | None = None
    drained_seconds: float | None = None
    notes: str = ""
    expected: tuple[str, ...] = ()  # alerts this drill should fire
    fired: dict[str, float] = field(default_factory=dict)  # alert → seconds after the fault
    tracebacks: int = 0  # in every process's log


@dataclass
class Service:
    url: str
    db_url: str
    sim_url: str
    key: str
    procs: dict[str, Proc]
    workdir: Path
    metrics_urls: list[str]  # every process that serves /metrics (Prometheus's targets)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.procs[name].kill(sig)

    def tracebacks(self) -> int:
        return sum(
            path.read_text(errors="replace").count("Traceback")
            for path in self.workdir.glob("*.log")
        )


async def wait_up(url: str, seconds: float = 30) -> None:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/healthz", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.asynccontextmanager
async def service(
    db_url: str,
    workdir: Path,
    single: bool = False,
    sim: dict[str, str] | None = None,
    **extra: str,
) -> AsyncIterator[Service]:
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, db_url)
    store = Store.connect(db_url)
    key, _ = await store.clients.create_key("chaos", ["jobs:write", "jobs:read"], datetime.now(UTC))
    await store.close()
    api_port, sim_port = free_port(), free_port()
    base = clean_env()
    simulator = Proc(
        ["simulator", "--port", str(sim_port)],
        {**base, **STANDALONE_SIM, "SIM_ETA_SECONDS": "1", **(sim or {})},
        workdir / "sim.log",
    )
    env = {
        **base,
        "DATABASE_URL": db_url,
        "MODELSLAB_API_KEY": "test-key",
        "MODELSLAB_BASE_URL": f"http://127.0.0.1:{sim_port}/api/v6",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "WEBHOOK_SECRET": "chaos",
        "PROVIDER_MAX_INFLIGHT": "10",
        "SWEEP_INTERVAL_SECONDS": "0.5",
        "ETA_GRACE_SECONDS": "2",
        "POLL_BACKOFF_BASE_SECONDS": "1",
        "POLL_BACKOFF_MAX_SECONDS": "10",
        "RETRY_BACKOFF_BASE_SECONDS": "1",
        "LEASE_SECONDS": "20",
        "PROVIDER_TIMEOUT_SECONDS": "5",
        "CLIENT_JOBS_PER_MINUTE": "100000",
        "CLIENT_MAX_UNFINISHED": "100000",
        "SERIES_FLUSH_SECONDS": "2",
        "METRICS_REFRESH_SECONDS": "1",
        "LOG_FORMAT": "json",
        **extra,
    }
    if single:  # SQLite: one process, the API and the workers
        procs = {
            "sim": simulator,
            "api": Proc(["serve", "--port", str(api_port)], env, workdir / "api.log"),
        }
        metrics_urls = [f"127.0.0.1:{api_port}"]
    else:
        ports = [free_port(), free_port()]
        procs = {
            "sim": simulator,
            "api": Proc(
                ["serve", "--no-workers", "--port", str(api_port)], env, workdir / "api.log"
            ),
            **{
                f"worker-{n}": Proc(["worker", "--port", str(port)], env, workdir / f"w{n}.log")
                for n, port in enumerate(ports, start=1)
            },
        }
        metrics_urls = [f"127.0.0.1:{p}" for p in (api_port, *ports)]
    svc = Service(
        f"http://127.0.0.1:{api_port}",
        db_url,
        f"http://127.0.0.1:{sim_port}",
        key,
        procs,
        workdir,
        metrics_urls,
    )
    try:
        await wait_up(svc.url)
        yield svc
    finally:
        for proc in procs.values():
            with contextlib.suppress(Exception):
                proc.kill(signal.SIGTERM)


class Load:
    """Creates a job every `period` seconds until stopped; a 503 is retried after its
    Retry-After, as a client should; every answer is counted."""

    def __init__(self, svc: Service, period: float = 0.1, body: dict[str, Any] | None = None):
        self.svc = svc
        self.period = period
        self.body = body or BODY
        self.accepted: list[str] = []
        self.accepted_at: list[float] = []
        self.answers: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.svc.key}"}
        async with httpx.AsyncClient(base_url=self.svc.url, timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    r = await client.post("/v1/jobs", json=self.body, headers=headers)
                    self.answers[str(r.status_code)] += 1
                    if r.status_code == 202:
                        self.accepted.append(r.json()["id"])
                        self.accepted_at.append(time.monotonic())
                    elif r.status_code == 503:
                        wait = float(r.headers.get("retry-after", "1"))
                        await asyncio.sleep(min(wait, 1.0))
                except httpx.HTTPError as exc:
                    self.answers[type(exc).__name__] += 1
                    await asyncio.sleep(0.2)
                await asyncio.sleep(max(self.period - (time.monotonic() - started), 0))


async def settle(svc: Service, load: Load, outcome: Outcome, seconds: float = 300) -> None:
    """Wait for every accepted job to finish, then count what the fault cost."""
    outcome.accepted = len(load.accepted)
    outcome.answers = load.answers
    store = Store.connect(svc.db_url)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                found = [await store.jobs.get_job(j) for j in load.accepted]
            except Exception:
                await asyncio.sleep(0.5)
                continue
            unfinished = [
                j for j in found if j is not None and j.status.value in ("queued", "processing")
            ]
            if not unfinished or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        outcome.lost = sum(j is None for j in found)
        outcome.misstated = sum(j is not None and j.status.value != "succeeded" for j in found)
        async with httpx.AsyncClient() as client:
            log = (await client.get(f"{svc.sim_url}/_sim/log", timeout=5)).json()
        accepted = log["accepted"]
        outcome.second_generations = sum(
            max(accepted.get(str(j.id), 0) - 1, 0) for j in found if j is not None
        )
    finally:
        await store.close()


async def first_submit_after(svc: Service, ended: datetime) -> float | None:
    """Seconds from `ended` to the first submission after it (read from the jobs)."""
    store = Store.connect(svc.db_url)
    try:
        async with store.db.read() as conn:
            first = (
                await conn.execute(
                    select(func.min(jobs.c.submitted_at)).where(jobs.c.submitted_at >= ended)
                )
            ).scalar()
    finally:
        await store.close()
    if first is None:
        return None
    at: datetime = datetime.fromisoformat(first) if isinstance(first, str) else first
    if at.tzinfo is None:  # SQLite hands aggregates back as naive text
        at = at.replace(tzinfo=UTC)
    return round((at - ended).total_seconds(), 1)
