"""What keeping outputs costs: webhook ingest with archiving on and off, and the archiver's
throughput beside a bare download-and-write loop, both measured in the same run.

    python -m bench.archive_bench --backend postgresql|sqlite [--seconds 8] [--rounds 4]

Ingest: two fresh databases seeded alike; two `serve --no-workers` processes, OUTPUT_STORE
`none` and a directory (a first success then also queues its archive, in the same
statement); wrk alternates between them. Throughput: OUTPUTS succeeded jobs whose output is
one of the simulator's PNGs (default size) on a loopback file server; one `worker` process
archives them all (time from start to the last `done`); the anchor downloads the same URL as
often, with the same concurrency, hashes and writes each copy (httpx, no database). Prints a
JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.server
import json
import os
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.http_bench import (
    SECRET,
    database,
    drop_databases,
    free_port,
    lua_scripts,
    prepare,
    start,
    wrk,
)
from service.provider.images import outpaint_png
from service.store import Store
from service.store.migrate import upgrade
from tests.seeding import seed_jobs

OUTPUTS = 400
CONCURRENCY = 4  # OUTPUT_ARCHIVE_CONCURRENCY's default


def serve_png(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """The provider's CDN: the simulator's PNG at its default size, on loopback."""
    (directory / "out.png").write_bytes(outpaint_png(None, 1280, 720, 10, 7))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/out.png"


def service_env(url: str, port: int, output_store: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "WEBHOOK_SECRET": SECRET,
        "MODELSLAB_API_KEY": "bench-not-used",
        "MODELSLAB_BASE_URL": "http://127.0.0.1:9/api/v6",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        "OUTPUT_STORE": output_store,
        "ALLOW_PRIVATE_CALLBACKS": "true",
    }


def ingest(backend: str, workdir: Path, seconds: int, rounds: int) -> dict[str, Any]:
    services: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    try:
        for mode in ("off", "on"):
            url, _ = database(backend, workdir, f"ingest_{mode}")
            key, others = asyncio.run(prepare(url))
            port = free_port()
            (workdir / mode).mkdir()
            scripts = lua_scripts(workdir / mode, key, others)
            store = "none" if mode == "off" else str(workdir / "outputs-ingest")
            proc = start(
                ["service", "serve", "--no-workers"],
                service_env(url, port, store),
                port,
                workdir / f"ingest-{mode}.log",
            )
            services[mode] = (proc, port, scripts)
        for _ in range(rounds):
            for mode in ("off", "on"):
                _proc, port, scripts = services[mode]
                runs[mode].append(
                    wrk(f"http://127.0.0.1:{port}", scripts["service_webhook"], seconds)
                )
    finally:
        for proc, _port, _scripts in services.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return {
        mode: {
            "rps": statistics.median(r["rps"] for r in v),
            "p99_ms": max(r["p99_ms"] for r in v),
            "non_2xx": sum(r["non_2xx"] for r in v),
        }
        for mode, v in runs.items()
    }


async def seed_archives(url: str, output_url: str, n: int) -> None:
    """`n` succeeded jobs, each with one output at `output_url`, their archives pending."""
    await asyncio.to_thread(upgrade, url)
    store = Store.connect(url)
    try:
        await store.clients.create_key("bench", ["jobs:write"], _now())
        async with store.engine.begin() as conn:
            await seed_jobs(conn, 1, n, "succeeded", _now(), "a")
            cast = "CAST(:out AS jsonb)" if conn.dialect.name == "postgresql" else ":out"
            await conn.execute(
                text(f"UPDATE jobs SET output = {cast}, archive_status = 'pending'"),
                {"out": json.dumps([output_url])},
            )
            now: object = _now()
            if conn.dialect.name != "postgresql":
                now = _now().replace(tzinfo=None).isoformat(sep=" ")
            await conn.execute(
                text(
                    "INSERT INTO output_archives (job_id, status, attempts, next_attempt_at,"
                    " deadline_at, created_at, updated_at)"
                    " SELECT id, 'pending', 0, :now, :now, :now, :now FROM jobs"
                ),
                {"now": now},
            )
            await conn.execute(
                text("UPDATE output_archives SET deadline_at = next_attempt_at + INTERVAL '1 day'")
                if conn.dialect.name == "postgresql"
                else text(
                    "UPDATE output_archives SET deadline_at = datetime(deadline_at, '+1 day')"
                )
            )
    finally:
        await store.close()


async def pending(url: str) -> int:
    store = Store.connect(url)
    try:
        return (await store.archives.backlog()).pending
    finally:
        await store.close()


def throughput(backend: str, workdir: Path, output_url: str) -> dict[str, Any]:
    url, _ = database(backend, workdir, "archive")
    asyncio.run(seed_archives(url, output_url, OUTPUTS))
    port = free_port()
    env = service_env(url, port, str(workdir / "outputs-archive"))
    started = time.perf_counter()
    proc = start(["service", "worker"], env, port, workdir / "archive.log")
    try:
        while asyncio.run(pending(url)):
            if time.perf_counter() - started > 300:
                raise RuntimeError("the archive did not finish")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    stored = sum(1 for p in (workdir / "outputs-archive").rglob("*.png"))
    return {"outputs": OUTPUTS, "stored": stored, "seconds": round(elapsed, 2)}


async def anchor(output_url: str, directory: Path) -> float:
    """Outputs per second of a bare loop: GET, SHA-256, write; CONCURRENCY at a time."""
    sem = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> None:
            async with sem:
                data = (await client.get(output_url)).content
                hashlib.sha256(data).hexdigest()
                (directory / f"{i}.png").write_bytes(data)

        started = time.perf_counter()
        await asyncio.gather(*[one(i) for i in range(OUTPUTS)])
        return OUTPUTS / (time.perf_counter() - started)


def _now() -> Any:
    from service.clock import utcnow

    return utcnow()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="outpaint-archive-bench-"))
    server, output_url = serve_png(workdir)
    try:
        webhook = ingest(args.backend, workdir, args.seconds, args.rounds)
        archived = throughput(args.backend, workdir, output_url)
        (workdir / "anchor").mkdir()
        bare = asyncio.run(anchor(output_url, workdir / "anchor"))
    finally:
        server.shutdown()
        if args.backend == "postgresql":
            drop_databases()
    off, on = webhook["off"], webhook["on"]
    rate = archived["outputs"] / archived["seconds"]
    print(
        f"{args.backend} webhook ingest: archiving off {off['rps']:.0f} req/s (p99 "
        f"{off['p99_ms']:.1f} ms), on {on['rps']:.0f} req/s (p99 {on['p99_ms']:.1f} ms): "
        f"{on['rps'] / off['rps']:.2f} of off"
    )
    print(
        f"{args.backend} archive: {archived['outputs']} outputs in {archived['seconds']} s "
        f"({rate:.1f}/s, worker start included); bare download loop {bare:.1f}/s"
    )
    summary = {
        "backend": args.backend,
        "png_bytes": (workdir / "out.png").stat().st_size,
        "webhook": webhook,
        "archive": {**archived, "per_second": round(rate, 1), "anchor_per_second": round(bare, 1)},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
