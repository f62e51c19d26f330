"""Webhook ingest, job creation and end-to-end throughput, each beside the anchor, with wrk.

    python -m bench.http_bench --backend postgresql|sqlite [--seconds 8] [--rounds 2]

For each backend: a fresh database, migrated and seeded with JOBS processing jobs; the
service (`serve --no-workers`, one uvicorn process) and the anchor (`bench.anchor`, a bare
endpoint doing one UPDATE by primary key) run side by side; wrk (2 threads, 32
connections) alternates between them, `rounds` times each. Prints a JSON summary on the
last line for `bench/report.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.domain.tokens import make_token
from service.store import Store
from service.store.migrate import upgrade
from tests.seeding import seed_jobs

JOBS = 20_000
SECRET = "bench-webhook-secret"
CONNECTIONS = 32
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CLIENTS = 8  # creation is also measured spread over this many clients


async def prepare(url: str) -> tuple[str, list[str]]:
    """Migrate, create a client key (and one for each of CLIENTS more clients), seed JOBS
    processing jobs (ids 1..JOBS) of the first client."""
    await asyncio.to_thread(upgrade, url)
    store = Store.connect(url)
    try:
        key, _ = await store.clients.create_key("bench", ["jobs:write", "jobs:read"], _now())
        others = [
            (await store.clients.create_key(f"bench-{i}", ["jobs:write"], _now()))[0]
            for i in range(CLIENTS)
        ]
        async with store.engine.begin() as conn:
            from datetime import timedelta

            await seed_jobs(conn, 1, JOBS, "processing", _now() - timedelta(seconds=1), "b")
            await conn.execute(
                text(
                    "INSERT INTO status_counts (client_id, status, shard, n) VALUES (1, 'processing', 0, :n)"
                    " ON CONFLICT (client_id, status, shard) DO UPDATE SET n = status_counts.n + excluded.n"
                ),
                {"n": JOBS},
            )
        return key, others
    finally:
        await store.close()


def _now() -> datetime:
    from service.clock import utcnow

    return utcnow()


def lua_scripts(workdir: Path, key: str, others: list[str]) -> dict[str, Path]:
    paths = ",\n".join(f'"/webhooks/modelslab/{make_token(SECRET, i)}"' for i in range(1, JOBS + 1))
    hook_body = (
        '\'{"status":"success","id":\' .. i .. \',"output":["https://cdn.example.invalid/\' .. i .. '
        '\'.png"],"generationTime":2.1,"track_id":\' .. i .. \'}\''
    )
    common = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    seed = "local counter = 0\nsetup = function(thread) thread:set('tid', counter); counter = counter + 1 end\n"
    seed += "init = function() math.randomseed(os.time() * 1000 + (tid or 0)) end\n"
    scripts = {
        "service_webhook": f"{common}{seed}paths = {{\n{paths}\n}}\n"
        f"request = function()\n  local i = math.random(#paths)\n  return wrk.format(nil, paths[i], nil, {hook_body})\nend\n",
        "anchor_webhook": f"{common}{seed}request = function()\n  local i = math.random({JOBS})\n"
        f"  return wrk.format(nil, '/hook/' .. i, nil, {hook_body})\nend\n",
        "service_create": f'{common}wrk.headers["Authorization"] = "Bearer {key}"\n'
        'wrk.body = \'{"image":"https://example.invalid/in.png","prompt":"bench","width":256,"height":192}\'\n',
        "service_create_many": f"{common}{seed}keys = {{{', '.join(repr(k) for k in others)}}}\n"
        'wrk.body = \'{"image":"https://example.invalid/in.png","prompt":"bench","width":256,"height":192}\'\n'
        "request = function()\n"
        "  return wrk.format(nil, nil, {['Authorization'] = 'Bearer ' .. keys[math.random(#keys)], "
        "['Content-Type'] = 'application/json'}, nil)\nend\n",
        "anchor_create": f"{common}{seed}"
        'wrk.body = \'{"image":"https://example.invalid/in.png","prompt":"bench","width":256,"height":192}\'\n'
        "request = function()\n  return wrk.format(nil, '/hook/' .. math.random(100000), nil, nil)\nend\n",
    }
    out = {}
    for name, body in scripts.items():
        path = workdir / f"{name}.lua"
        path.write_text(body)
        out[name] = path
    return out


def wrk(url: str, script: Path, seconds: int) -> dict[str, Any]:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def start(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{args} did not start; see {log}")


def start_service(url: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """The service as measured: the API alone (`serve --no-workers`), one process, logging
    at WARNING, no limits in the way; a provider that is never called."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "WEBHOOK_SECRET": SECRET,
        "MODELSLAB_API_KEY": "bench-not-used",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        "CLIENT_JOBS_PER_MINUTE": "100000000",
        "CLIENT_MAX_UNFINISHED": "100000000",
    }
    return start(["service", "serve", "--no-workers"], env, port, workdir / "service.log")


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


async def count_status(url: str, status: str) -> int:
    store = Store.connect(url)
    try:
        async with store.engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        text("SELECT count(*) FROM jobs WHERE status = :s"), {"s": status}
                    )
                ).scalar_one()
            )
    finally:
        await store.close()


async def end_to_end(url: str, workdir: Path, jobs: int = 300) -> dict[str, Any]:
    """The whole service with workers and the in-process simulator (eta 0.2 s): create
    `jobs` jobs as fast as 32 clients can, time until every one has succeeded."""
    await asyncio.to_thread(upgrade, url)
    store = Store.connect(url)
    key, _ = await store.clients.create_key("e2e", ["jobs:write", "jobs:read"], _now())
    await store.close()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "SIM_ETA_SECONDS": "0.2",
        "ETA_GRACE_SECONDS": "5",
        "PROVIDER_MAX_INFLIGHT": "1000",
        "SUBMIT_CONCURRENCY": "32",
        "CLIENT_JOBS_PER_MINUTE": "1000000",
        "WEBHOOK_SECRET": SECRET,
    }
    env.pop("MODELSLAB_API_KEY", None)
    proc = start(["service", "serve"], env, port, workdir / "e2e.log")
    try:
        started = time.perf_counter()
        sem = asyncio.Semaphore(CONNECTIONS)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        ) as client:

            async def one() -> None:
                async with sem:
                    r = await client.post(
                        "/v1/jobs", json={"image": "https://example.invalid/a.png"}
                    )
                    assert r.status_code == 202, r.text

            await asyncio.gather(*[one() for _ in range(jobs)])
        while await count_status(url, "succeeded") < jobs:
            if time.perf_counter() - started > 120:
                raise RuntimeError("end-to-end run did not finish")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {
        "jobs": jobs,
        "seconds": round(elapsed, 2),
        "jobs_per_second": round(jobs / elapsed, 1),
        "peak_rss_mb": round(rss, 1),
    }


def database(backend: str, workdir: Path, name: str) -> tuple[str, str]:
    """(SQLAlchemy URL, anchor URL) of a fresh database."""
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        return f"sqlite+aiosqlite:///{path}", f"sqlite:///{workdir / (name + '-anchor.db')}"
    db = f"bench_{name}_{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-qc",
            f'CREATE DATABASE "{db}"',
        ],
        check=True,
    )
    base = make_url(PG_ADMIN).set(database=db)
    return (
        base.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False),
        base.render_as_string(hide_password=False),
    )


def drop_databases() -> None:
    listed = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-Atc",
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'",
        ],
        capture_output=True,
        text=True,
    ).stdout.split()
    for db in listed:
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "test",
                "-qc",
                f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)',
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="outpaint-bench-"))
    try:
        url, anchor_url = database(args.backend, workdir, "http")
        key, others = asyncio.run(prepare(url))
        scripts = lua_scripts(workdir, key, others)
        port, anchor_port = free_port(), free_port()
        service = start_service(url, port, workdir)
        anchor = start(
            ["bench.anchor", "--database-url", anchor_url, "--port", str(anchor_port)],
            dict(os.environ),
            anchor_port,
            workdir / "anchor.log",
        )
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in scripts}
        try:
            for _ in range(args.rounds):
                for kind in ("webhook", "create", "create_many"):
                    anchor_kind = "create" if kind == "create_many" else kind
                    if kind != "create_many":
                        runs[f"anchor_{anchor_kind}"].append(
                            wrk(
                                f"http://127.0.0.1:{anchor_port}",
                                scripts[f"anchor_{anchor_kind}"],
                                args.seconds,
                            )
                        )
                    path = "/v1/jobs" if kind.startswith("create") else ""
                    runs[f"service_{kind}"].append(
                        wrk(
                            f"http://127.0.0.1:{port}{path}",
                            scripts[f"service_{kind}"],
                            args.seconds,
                        )
                    )
            rss = peak_rss_mb(service.pid)
        finally:
            for proc in (service, anchor):
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
        first = asyncio.run(count_status(url, "succeeded"))
        e2e_url, _ = database(args.backend, workdir, "e2e")
        e2e = asyncio.run(end_to_end(e2e_url, workdir))
        summary = {
            "backend": args.backend,
            "seconds_per_run": args.seconds,
            "rounds": args.rounds,
            "connections": CONNECTIONS,
            "runs": {
                k: {
                    "rps": statistics.median(r["rps"] for r in v),
                    "p50_ms": statistics.median(r["p50_ms"] for r in v),
                    "p99_ms": max(r["p99_ms"] for r in v),
                    "non_2xx": sum(r["non_2xx"] for r in v),
                    "all": v,
                }
                for k, v in runs.items()
            },
            "webhook_first_deliveries": first,
            "webhook_requests": int(sum(r["rps"] for r in runs["service_webhook"]) * args.seconds),
            "service_peak_rss_mb": round(rss, 1),
            "end_to_end": e2e,
        }
        for kind in ("webhook", "create", "create_many"):
            anchor_kind = "create" if kind == "create_many" else kind
            s, a = summary["runs"][f"service_{kind}"], summary["runs"][f"anchor_{anchor_kind}"]
            print(
                f"{args.backend} {kind:<8} service {s['rps']:>8.0f} req/s p99 {s['p99_ms']:6.1f} ms   "
                f"anchor {a['rps']:>8.0f} req/s p99 {a['p99_ms']:6.1f} ms   ratio {s['rps'] / a['rps']:.2f}"
            )
        print(
            f"{args.backend} end-to-end {e2e['jobs_per_second']} jobs/s; peak RSS {rss:.0f} MB (ingest), "
            f"{e2e['peak_rss_mb']} MB (end to end)"
        )
        print(json.dumps(summary))
    finally:
        if args.backend == "postgresql":
            drop_databases()


if __name__ == "__main__":
    main()
