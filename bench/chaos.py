"""`make chaos`: infrastructure faults under load, against real processes, what each cost,
and which alerts a real Prometheus fired. Not part of `make test`: it takes a quarter of an
hour and owns a PostgreSQL cluster of its own (on another port, removed afterwards; never
the shared one) and a Prometheus (on loopback).

    python -m bench.chaos [--quick]

Each drill starts the service fresh (the API, two workers, the standalone simulator) and a
Prometheus scraping every process with the project's alert rules (`for:` cut to a tenth,
bench/chaos_prometheus.py), creates jobs at a steady rate from a client that honours 503 +
Retry-After, injects the fault, and waits for every accepted job to finish. It reports: jobs
accepted, lost, mis-stated, second generations, the answers a client saw, how long after the
fault the service was submitting again and had finished everything, the alerts that fired
(seconds after the fault began) beside those expected, and the tracebacks in every log. A
healthy run comes first: no alert may fire there. The table goes to bench/CHAOS.md.
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
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.chaos_prometheus import FOR_DIVISOR, FOR_FLOOR_SECONDS, Watch, prometheus
from bench.chaos_rig import BODY, Load, Outcome, Service, first_submit_after, service, settle
from service.store import Store
from tests.live import LiveServer
from tests.pgcluster import PrivateCluster

HERE = Path(__file__).resolve().parent
Fault = Callable[[Service, Load, Outcome], Awaitable[None]]


async def scenario(
    name: str,
    db_url: str,
    workdir: Path,
    fault: Fault,
    *,
    expected: tuple[str, ...] = (),
    single: bool = False,
    period: float = 0.2,
    body: dict[str, Any] | None = None,
    sim: dict[str, str] | None = None,
    **extra: str,
) -> Outcome:
    """Load for a few seconds, the fault (it returns when it ended), five more seconds of
    load, then settle, with Prometheus watching throughout. Recovery is from the fault's end
    to the first job the service submitted after it."""
    outcome = Outcome(name, expected=expected)
    print(f"== {name}", flush=True)
    here = workdir / name.replace(" ", "-")
    async with (
        service(db_url, here, single, sim=sim, **extra) as svc,
        prometheus(here / "prometheus", svc.metrics_urls) as prom,
    ):
        watch = Watch(prom)
        watch.start()
        load = Load(svc, period, body)
        load.start()
        await asyncio.sleep(3)
        watch.fault_now()
        await fault(svc, load, outcome)
        ended = datetime.now(UTC)
        await asyncio.sleep(5)
        await load.stop()
        started = time.monotonic()
        await settle(svc, load, outcome)
        outcome.drained_seconds = round(time.monotonic() - started + 5, 1)
        outcome.recovery_seconds = await first_submit_after(svc, ended)
        outcome.fired = await watch.stop()
        outcome.tracebacks = svc.tracebacks()
    print(outcome, flush=True)
    return outcome


async def drill(name: str, run: Awaitable[Outcome]) -> Outcome:
    """One drill's outcome; a drill that breaks (the rig's fault, not the service's) is
    reported as such, and the run goes on to the next one instead of losing them all."""
    try:
        return await run
    except Exception as exc:
        traceback.print_exc()
        return Outcome(name, notes=f"**the drill itself failed: {type(exc).__name__}: {exc}**")


def healthy(seconds: float) -> Fault:
    async def fault(_svc: Service, _load: Load, o: Outcome) -> None:
        await asyncio.sleep(seconds)
        o.notes = f"no fault: {seconds:g} s of load at 5 jobs/s"

    return fault


def pg_restart(cluster: PrivateCluster) -> Fault:
    async def fault(_svc: Service, _load: Load, _o: Outcome) -> None:
        await asyncio.to_thread(cluster.restart)

    return fault


def pg_stop(cluster: PrivateCluster, seconds: float) -> Fault:
    async def fault(_svc: Service, _load: Load, o: Outcome) -> None:
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(cluster.start)
        o.notes = f"stopped {seconds:g} s"

    return fault


def provider_down(seconds: float) -> Fault:
    """ModelsLab stops answering (its process frozen: calls hang until they time out), and
    comes back with everything it was generating."""

    async def fault(svc: Service, _load: Load, o: Outcome) -> None:
        sim = svc.procs["sim"].popen
        sim.send_signal(signal.SIGSTOP)
        await asyncio.sleep(seconds)
        sim.send_signal(signal.SIGCONT)
        o.notes = f"simulator frozen {seconds:g} s"

    return fault


def worker_killed(after: float) -> Fault:
    async def fault(svc: Service, _load: Load, o: Outcome) -> None:
        svc.kill("worker-1", signal.SIGKILL)
        await asyncio.sleep(after)
        o.notes = "worker-1 SIGKILLed holding claims (lease 20 s)"

    return fault


def queue_growth(seconds: float) -> Fault:
    """Demand over what the provider's cap lets through: 20 jobs/s for a while."""

    async def fault(_svc: Service, load: Load, o: Outcome) -> None:
        load.period = 0.05
        await asyncio.sleep(seconds)
        load.period = 0.2
        o.notes = f"20 jobs/s for {seconds:g} s against a cap of 10 in flight (eta 1 s)"

    return fault


class Endpoint:
    """A client's callback endpoint on loopback that can go down (503) and come back."""

    def __init__(self) -> None:
        self.down = False
        self.server = LiveServer()

    async def hook(self, _request: Request) -> Response:
        return Response(status_code=503 if self.down else 204)

    async def start(self) -> str:
        await self.server.start(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))
        return f"{self.server.url}/hook"


def endpoint_down(endpoint: Endpoint, seconds: float) -> Fault:
    async def fault(_svc: Service, _load: Load, o: Outcome) -> None:
        endpoint.down = True
        await asyncio.sleep(seconds)
        endpoint.down = False
        o.notes = f"the client's callback endpoint answered 503 for {seconds:g} s"

    return fault


async def store_full(workdir: Path, cluster: PrivateCluster, seconds: float) -> Outcome:
    """The output store (a directory on a 16 MiB tmpfs) fills for a while: archives wait,
    and once space returns the backlog drains; the drill times that from the moment space
    came back to the last pending archive."""
    mount = workdir / "outputs-disk"
    mount.mkdir(parents=True)
    mount_cmd = ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)]
    await asyncio.to_thread(subprocess.run, mount_cmd, check=True)
    drained: list[float] = []
    try:
        db = cluster.url_for(cluster.new_database())

        async def fault(svc: Service, _load: Load, o: Outcome) -> None:
            filler = mount / "filler"
            # suppress outermost: closing the full file raises too (its buffer cannot flush)
            with contextlib.suppress(OSError), filler.open("wb") as f:
                while True:
                    f.write(b"\0" * 65536)
            await asyncio.sleep(seconds)
            filler.unlink()
            back = time.monotonic()
            store = Store.connect(svc.db_url)
            try:
                while True:
                    if not await store.archives.pending() or time.monotonic() - back > 120:
                        break
                    await asyncio.sleep(0.2)
                drained.append(round(time.monotonic() - back, 1))
            finally:
                await store.close()
            o.notes = (
                f"the output store's disk full for {seconds:g} s; archive backlog drained "
                f"{drained[0]} s after space returned"
            )

        return await scenario(
            f"output store full {seconds:g} s",
            db,
            workdir,
            fault,
            expected=("OutpaintOutputStoreRefusing",),
            OUTPUT_STORE=str(mount / "outputs"),
            OUTPUT_ARCHIVE_RETRY_BASE_SECONDS="1",
            ALLOW_PRIVATE_CALLBACKS="true",  # the simulator's outputs are on loopback
        )
    finally:
        await asyncio.to_thread(subprocess.run, ["umount", "-l", str(mount)], check=False)


async def disk_full(workdir: Path) -> Outcome:
    """The embedded default's disk fills for 10 s (a 32 MiB tmpfs)."""
    mount = workdir / "disk"
    mount.mkdir()
    mount_cmd = ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)]
    await asyncio.to_thread(subprocess.run, mount_cmd, check=True)
    try:

        async def fault(_svc: Service, _load: Load, o: Outcome) -> None:
            filler = mount / "filler"
            # suppress outermost: closing the full file raises too (its buffer cannot flush)
            with contextlib.suppress(OSError), filler.open("wb") as f:
                while True:
                    f.write(b"\0" * 65536)
            await asyncio.sleep(10)
            filler.unlink()
            o.notes = "SQLite's disk full for 10 s"

        url = f"sqlite+aiosqlite:///{mount}/chaos.db"
        return await scenario("disk full (sqlite)", url, workdir, fault, single=True)
    finally:
        await asyncio.to_thread(subprocess.run, ["umount", "-l", str(mount)], check=False)


async def throughput(svc: Service, seconds: float) -> float:
    """Jobs finished per second over the last `seconds` (the load outruns the cap)."""
    store = Store.connect(svc.db_url)
    try:
        now = datetime.now(UTC)
        listed = await store.jobs.list_jobs(None, None, None, 100_000)
        done = [
            j
            for j in listed
            if j.completed_at is not None and (now - j.completed_at).total_seconds() <= seconds
        ]
        return round(len(done) / seconds, 2)
    finally:
        await store.close()


def saturated(seconds: float, rates: dict[str, float], label: str) -> Fault:
    """20 jobs/s (twice what the cap lets through) for `seconds`; then what got finished
    per second over the last part of it."""

    async def fault(svc: Service, load: Load, o: Outcome) -> None:
        load.period = 0.05
        await asyncio.sleep(seconds)
        rates[label] = await throughput(svc, seconds * 2 / 3)
        load.period = 0.2
        o.notes = f"20 jobs/s for {seconds:g} s: {rates[label]} jobs/s finished"

    return fault


async def main(quick: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="outpaint-chaos-"))
    cluster = PrivateCluster().create()  # a directory of its own, owned by postgres
    cluster.start()
    outcomes: list[Outcome] = []
    rates: dict[str, float] = {}
    scale = 0.5 if quick else 1.0
    endpoint = Endpoint()
    hook = await endpoint.start()

    def db() -> str:
        return cluster.url_for(cluster.new_database())

    try:
        drills: list[tuple[str, Fault, dict[str, Any]]] = [
            ("healthy", healthy(120 * scale), {}),
            ("postgresql restarted", pg_restart(cluster), {}),
            (
                "postgresql stopped 30 s",
                pg_stop(cluster, 30),
                {"expected": ("OutpaintDatabaseUnreachable",)},
            ),
            (
                "provider frozen 150 s",
                provider_down(150 * scale),
                {"expected": ("OutpaintProviderCircuitOpen",)},
            ),
            ("worker killed", worker_killed(40), {"expected": ("OutpaintDown",)}),
            (
                "queue growth 90 s",
                queue_growth(90 * scale),
                {"expected": ("OutpaintQueueGrowing",)},
            ),
            (
                "callback endpoint down 100 s",
                endpoint_down(endpoint, 100 * scale),
                {
                    "expected": ("OutpaintCallbacksFailing",),
                    "body": {**BODY, "callback_url": hook},
                    "ALLOW_PRIVATE_CALLBACKS": "true",
                    "CALLBACK_RETRY_SCHEDULE": "0,5,60,60,60,60",
                },
            ),
            (
                "webhooks kept, 20 jobs/s",
                saturated(60 * scale, rates, "kept"),
                {"expected": ("OutpaintQueueGrowing",)},
            ),
            (
                "webhooks lost, 20 jobs/s",
                saturated(120 * scale, rates, "lost"),
                {
                    "expected": ("OutpaintWebhooksStopped", "OutpaintQueueGrowing"),
                    "sim": {"SIM_WEBHOOK_DROP_RATE": "1"},
                },
            ),
        ]
        for name, fault, options in drills:
            outcomes.append(await drill(name, scenario(name, db(), workdir, fault, **options)))
        outcomes.append(
            await drill("output store full 40 s", store_full(workdir, cluster, 40 * scale))
        )
        outcomes.append(await drill("disk full (sqlite)", disk_full(workdir)))
    finally:
        await endpoint.server.stop()
        cluster.remove()
    write_report(outcomes, rates)


def write_report(outcomes: list[Outcome], rates: dict[str, float]) -> None:
    lines = [
        "# Chaos results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make chaos` (bench/chaos.py): the API, two",
        "workers and the standalone simulator as real processes on a PostgreSQL cluster of the run's",
        "own, a client creating 5 jobs/s that retries 503s after their Retry-After, and Debian's",
        "Prometheus scraping every process each 2 s with deploy/prometheus/alerts.yml, every `for:`",
        f"cut to a tenth (at least {FOR_FLOOR_SECONDS} s; bench/chaos_prometheus.py, FOR_DIVISOR = {FOR_DIVISOR}) so",
        "a drill of minutes can show it. Alerts are in seconds after the fault began.",
        "",
        "| drill | accepted | lost | mis-stated | second generations | answers the client saw | fault end → first submit | fault end → all done | alerts expected | alerts fired | tracebacks | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in outcomes:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(o.answers.items()))
        expected = ", ".join(o.expected) or "none"
        fired = ", ".join(
            f"{name} ({at} s)" for name, at in sorted(o.fired.items(), key=lambda x: x[1])
        )
        missing = [name for name in o.expected if name not in o.fired]
        verdict = f" **missing: {', '.join(missing)}**" if missing else ""
        lines.append(
            f"| {o.name} | {o.accepted} | {o.lost} | {o.misstated} | {o.second_generations} | "
            f"{answers} | {o.recovery_seconds} s | {o.drained_seconds} s | {expected} | "
            f"{fired or 'none'}{verdict} | {o.tracebacks} | {o.notes} |"
        )
    if "kept" in rates and "lost" in rates:
        share = rates["lost"] / rates["kept"] if rates["kept"] else 0.0
        lines += [
            "",
            "**Lost webhooks.** Jobs finished per second with the load twice what the cap lets",
            f"through: {rates['kept']} with every webhook delivered, {rates['lost']} with none",
            f"({share:.0%}); without webhooks the sweeper polls each job at its eta once results",
            "have come by poll alone for a while (service/domain/delivery.py).",
        ]
    text = "\n".join(lines) + "\n"
    (HERE / "CHAOS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter drills")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make chaos needs root (PostgreSQL's tools run as postgres; tmpfs are mounted)")
    asyncio.run(main(args.quick))
