"""`make chaos`: infrastructure faults under load, against real processes, and what each
cost. Not part of `make test`: it takes minutes and owns a PostgreSQL cluster of its own (on
another port, removed afterwards; never the shared one).

    python -m bench.chaos [--quick]

Each scenario starts the service fresh (the API, two workers, the standalone simulator),
creates jobs at a steady rate from a client that honours 503 + Retry-After, injects the
fault, and then waits for every accepted job to finish. It reports: jobs accepted, lost
(accepted but not in the database), mis-stated (not succeeded, though the simulator fails
none), second generations (the simulator accepted one job twice), the answers a client saw
that were not 2xx (503s retried included), and how long after the fault ended the service
was accepting and submitting again. The table goes to bench/CHAOS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from service.store import Store
from service.store.migrate import upgrade
from service.store.tables import jobs
from tests.pgcluster import PrivateCluster
from tests.processes import STANDALONE_SIM, Proc, clean_env

HERE = Path(__file__).resolve().parent
BODY = {"image": "https://images.example.invalid/chaos.png", "width": 64, "height": 64}


def free_port() -> int:
    import socket

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


@dataclass
class Service:
    url: str
    db_url: str
    sim_url: str
    key: str
    procs: dict[str, Proc]
    workdir: Path

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.procs[name].kill(sig)


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
    db_url: str, workdir: Path, single: bool = False, **extra: str
) -> AsyncIterator[Service]:
    await asyncio.to_thread(upgrade, db_url)
    store = Store.connect(db_url)
    key, _ = await store.clients.create_key("chaos", ["jobs:write", "jobs:read"], datetime.now(UTC))
    await store.close()
    api_port, sim_port = free_port(), free_port()
    base = clean_env()
    sim = Proc(
        ["simulator", "--port", str(sim_port)],
        {**base, **STANDALONE_SIM, "SIM_ETA_SECONDS": "1"},
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
        "LOG_FORMAT": "json",
        **extra,
    }
    if single:  # SQLite: one process, the API and the workers
        procs = {
            "sim": sim,
            "api": Proc(["serve", "--port", str(api_port)], env, workdir / "api.log"),
        }
    else:
        procs = {
            "sim": sim,
            "api": Proc(
                ["serve", "--no-workers", "--port", str(api_port)], env, workdir / "api.log"
            ),
            "worker-1": Proc(["worker", "--port", str(free_port())], env, workdir / "w1.log"),
            "worker-2": Proc(["worker", "--port", str(free_port())], env, workdir / "w2.log"),
        }
    svc = Service(
        f"http://127.0.0.1:{api_port}", db_url, f"http://127.0.0.1:{sim_port}", key, procs, workdir
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

    def __init__(self, svc: Service, period: float = 0.1) -> None:
        self.svc = svc
        self.period = period
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
                    r = await client.post("/v1/jobs", json=BODY, headers=headers)
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


async def settle(svc: Service, load: Load, outcome: Outcome, seconds: float = 240) -> None:
    """Wait for every accepted job to finish, then count what the fault cost."""
    outcome.accepted = len(load.accepted)
    outcome.answers = load.answers
    store = Store.connect(svc.db_url)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                jobs = [await store.jobs.get_job(j) for j in load.accepted]
            except Exception:
                await asyncio.sleep(0.5)
                continue
            unfinished = [
                j for j in jobs if j is not None and j.status.value in ("queued", "processing")
            ]
            if not unfinished or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        outcome.lost = sum(j is None for j in jobs)
        outcome.misstated = sum(j is not None and j.status.value != "succeeded" for j in jobs)
        async with httpx.AsyncClient() as client:
            log = (await client.get(f"{svc.sim_url}/_sim/log", timeout=5)).json()
        accepted = log["accepted"]
        outcome.second_generations = sum(
            max(accepted.get(str(j.id), 0) - 1, 0) for j in jobs if j is not None
        )
    finally:
        await store.close()


async def scenario(
    name: str,
    db_url: str,
    workdir: Path,
    fault: Callable[[Service, Load, Outcome], Awaitable[float]],
    single: bool = False,
) -> Outcome:
    """Load for a few seconds, the fault (which returns when it ended), five more seconds of
    load, then settle. Recovery is from the fault's end to the first job the service
    submitted after it (it was accepting again, and the provider taking work)."""
    outcome = Outcome(name)
    print(f"== {name}", flush=True)
    async with service(db_url, workdir / name.replace(" ", "-"), single) as svc:
        load = Load(svc)
        load.start()
        await asyncio.sleep(3)
        await fault(svc, load, outcome)
        ended = datetime.now(UTC)
        await asyncio.sleep(5)
        await load.stop()
        started = time.monotonic()
        await settle(svc, load, outcome)
        outcome.drained_seconds = round(time.monotonic() - started + 5, 1)
        outcome.recovery_seconds = await first_submit_after(svc, ended)
    print(outcome, flush=True)
    return outcome


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


def pg_restart(cluster: PrivateCluster) -> Callable[[Service, Load, Outcome], Awaitable[float]]:
    async def fault(_svc: Service, _load: Load, _o: Outcome) -> float:
        await asyncio.to_thread(cluster.restart)
        return time.monotonic()

    return fault


def pg_stop(cluster: PrivateCluster, seconds: float) -> Callable[..., Awaitable[float]]:
    async def fault(_svc: Service, _load: Load, o: Outcome) -> float:
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(cluster.start)
        o.notes = f"stopped {seconds:g} s"
        return time.monotonic()

    return fault


def provider_down(seconds: float) -> Callable[..., Awaitable[float]]:
    """ModelsLab stops answering (its process frozen: calls hang until they time out), and
    comes back with everything it was generating."""

    async def fault(svc: Service, _load: Load, o: Outcome) -> float:
        sim = svc.procs["sim"].popen
        sim.send_signal(signal.SIGSTOP)
        await asyncio.sleep(seconds)
        sim.send_signal(signal.SIGCONT)
        o.notes = f"simulator frozen {seconds:g} s"
        return time.monotonic()

    return fault


def worker_killed() -> Callable[..., Awaitable[float]]:
    async def fault(svc: Service, _load: Load, o: Outcome) -> float:
        svc.kill("worker-1", signal.SIGKILL)
        o.notes = "worker-1 SIGKILLed holding claims (lease 20 s)"
        return time.monotonic()

    return fault


async def main(quick: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="outpaint-chaos-"))
    cluster = PrivateCluster().create()  # a directory of its own, owned by postgres
    cluster.start()
    outcomes: list[Outcome] = []
    try:
        stop_for = 5 if quick else 30
        provider_for = 10 if quick else 90
        runs = [
            ("postgresql restarted", pg_restart(cluster)),
            (f"postgresql stopped {stop_for} s", pg_stop(cluster, stop_for)),
            (f"provider down {provider_for} s", provider_down(provider_for)),
            ("worker killed", worker_killed()),
        ]
        for name, fault in runs:
            db = cluster.url_for(cluster.new_database())
            outcomes.append(await scenario(name, db, workdir, fault))
        outcomes.append(await disk_full(workdir))
    finally:
        cluster.remove()
    write_table(outcomes)


async def disk_full(workdir: Path) -> Outcome:
    """The embedded default's disk fills for 10 s (a 32 MiB tmpfs)."""
    mount = workdir / "disk"
    mount.mkdir()
    mount_cmd = ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)]
    await asyncio.to_thread(subprocess.run, mount_cmd, check=True)
    try:

        async def fault(_svc: Service, _load: Load, o: Outcome) -> float:
            filler = mount / "filler"
            with filler.open("wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
            await asyncio.sleep(10)
            filler.unlink()
            o.notes = "SQLite's disk full for 10 s"
            return time.monotonic()

        url = f"sqlite+aiosqlite:///{mount}/chaos.db"
        return await scenario("disk full (sqlite)", url, workdir, fault, single=True)
    finally:
        await asyncio.to_thread(subprocess.run, ["umount", "-l", str(mount)], check=False)


def write_table(outcomes: list[Outcome]) -> None:
    lines = [
        "# Chaos results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make chaos` (bench/chaos.py): the API, two",
        "workers and the standalone simulator as real processes on a PostgreSQL cluster of the run's",
        "own, a client creating 10 jobs/s that retries 503s after their Retry-After.",
        "",
        "| scenario | accepted | lost | mis-stated | second generations | answers the client saw | fault end → first submit | fault end → all done | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in outcomes:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(o.answers.items()))
        lines.append(
            f"| {o.name} | {o.accepted} | {o.lost} | {o.misstated} | {o.second_generations} | "
            f"{answers} | {o.recovery_seconds} s | {o.drained_seconds} s | {o.notes} |"
        )
    text = "\n".join(lines) + "\n"
    (HERE / "CHAOS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter outages")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make chaos needs root (PostgreSQL's tools run as postgres; a tmpfs is mounted)")
    asyncio.run(main(args.quick))
