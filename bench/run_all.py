"""`make bench`: every benchmark on PostgreSQL and SQLite, then bench/RESULTS.md.

Each figure is printed beside a baseline measured in the same run (the anchor, or the
smaller table). Nothing here asserts a time.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {
    "webhook_ratio": 0.5,
    "webhook_p99_ms": 50.0,
    "create_ratio": 0.4,
    "sqlite_webhook_ratio": 0.25,
    "sqlite_webhook_p99_ms": 100.0,
    "sqlite_create_p99_ms": 150.0,
    "claim_ratio": 1.5,
    "rss_mb": 200.0,
    "archive_ingest_ratio": 0.9,  # archiving on slows webhook ingest by at most 10 %
}


def goal(backend: str, kind: str, ratio: float, p99: float) -> str:
    """The targets of the write-path issue, and whether this run met them."""
    t = TARGETS
    if backend == "postgresql":
        if kind == "webhook":
            return (
                f"≥ {t['webhook_ratio']}: {verdict(ratio >= t['webhook_ratio'])}, "
                f"p99 ≤ {t['webhook_p99_ms']:g} ms: {verdict(p99 <= t['webhook_p99_ms'])}"
            )
        if kind == "create":
            return f"≥ {t['create_ratio']}: {verdict(ratio >= t['create_ratio'])}"
        return "(one client's creations serialise; here 8 clients share the load)"
    if kind == "webhook":
        return (
            f"≥ {t['sqlite_webhook_ratio']}: {verdict(ratio >= t['sqlite_webhook_ratio'])}, "
            f"p99 ≤ {t['sqlite_webhook_p99_ms']:g} ms: "
            f"{verdict(p99 <= t['sqlite_webhook_p99_ms'])}"
        )
    if kind == "create":
        return (
            f"p99 ≤ {t['sqlite_create_p99_ms']:g} ms: {verdict(p99 <= t['sqlite_create_p99_ms'])}"
        )
    return ""


def run(args: list[str]) -> str:
    print("$", " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, check=True)
    print(done.stdout, flush=True)
    return done.stdout


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    pg = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-Atc", "SHOW server_version"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, PostgreSQL {pg}, "
        f"{(wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else 'wrk'}"
    )


def claim_rows(text: str) -> dict[str, tuple[float, float, float]]:
    rows = {}
    for line in text.splitlines():
        match = re.match(
            r"(\S.*?)\s{2,}([\d.]+) / [\d.]+\s+([\d.]+) / [\d.]+\s+([\d.]+)$",
            line,
        )
        if match:
            rows[match.group(1)] = (
                float(match.group(2)),
                float(match.group(3)),
                float(match.group(4)),
            )
    return rows


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main() -> None:
    started = datetime.now(UTC)
    claims = {
        "postgresql": claim_rows(
            run(
                [
                    "bench.claim_latency",
                    "--database-url",
                    "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
                ]
            )
        ),
        "sqlite": claim_rows(
            run(["bench.claim_latency", "--database-url", "sqlite+aiosqlite:///bench.db"])
        ),
    }
    http = {}
    for backend in ("postgresql", "sqlite"):
        out = run(["bench.http_bench", "--backend", backend])
        http[backend] = json.loads(out.strip().splitlines()[-1])

    archive = {}
    for backend in ("postgresql", "sqlite"):
        out = run(["bench.archive_bench", "--backend", backend])
        archive[backend] = json.loads(out.strip().splitlines()[-1])

    lines = [
        "# Benchmark results",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `make bench` on {machine()}.",
        "wrk, 2 threads, 32 connections; each figure is the median of the runs, service and anchor",
        "alternating; the anchor is `bench/anchor.py` (parse the JSON body, one UPDATE by primary key",
        "through a raw asyncpg pool, or one aiosqlite connection for SQLite), served by the same",
        "uvicorn; both run with logging at WARNING (no access log). The load generator, the database",
        "and the server share the machine's cores.",
        "",
        "## HTTP hot paths",
        "",
        "| backend | path | service req/s | service p50 / p99 ms | anchor req/s | anchor p99 ms | ratio | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, h in http.items():
        for kind in ("webhook", "create", "create_many"):
            anchor_kind = "create" if kind == "create_many" else kind
            s, a = h["runs"][f"service_{kind}"], h["runs"][f"anchor_{anchor_kind}"]
            ratio = s["rps"] / a["rps"]
            label = "create, 8 clients" if kind == "create_many" else kind
            lines.append(
                f"| {backend} | {label} | {s['rps']:.0f} | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} | "
                f"{a['rps']:.0f} | {a['p99_ms']:.1f} | {ratio:.2f} | "
                f"{goal(backend, kind, ratio, s['p99_ms'])} |"
            )
        bad = sum(h["runs"][k]["non_2xx"] for k in h["runs"])
        lines.append(
            f"| {backend} | | non-2xx answers in all runs: {bad} | webhook requests ≈ {h['webhook_requests']}, "
            f"first deliveries {h['webhook_first_deliveries']} (the rest duplicates) | | | | |"
        )
    lines += [
        "",
        "## Claims, searches and series, 10,000 versus 1,000,000 jobs",
        "",
        "| backend | query | ms at 10k | ms at 1M | ratio | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for backend, rows in claims.items():
        for name, (small, big, ratio) in rows.items():
            flat = ""
            if name.startswith("claim") and backend == "postgresql":
                flat = f"≤ {TARGETS['claim_ratio']}: {verdict(ratio <= TARGETS['claim_ratio'])}"
            lines.append(f"| {backend} | {name} | {small:.3f} | {big:.3f} | {ratio:.2f} | {flat} |")
    lines += [
        "",
        "## End to end and memory",
        "",
        "| backend | jobs | seconds | jobs/s | peak RSS, ingest | peak RSS, end to end | RSS target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, h in http.items():
        e = h["end_to_end"]
        peak = max(h["service_peak_rss_mb"], e["peak_rss_mb"])
        lines.append(
            f"| {backend} | {e['jobs']} | {e['seconds']} | {e['jobs_per_second']} | {h['service_peak_rss_mb']} MB | "
            f"{e['peak_rss_mb']} MB | ≤ {TARGETS['rss_mb']:g} MB: {verdict(peak <= TARGETS['rss_mb'])} |"
        )
    lines += [
        "",
        "## Keeping outputs (OUTPUT_STORE)",
        "",
        "Webhook ingest as above (`serve --no-workers`, wrk, 32 connections) on two databases",
        "seeded alike, OUTPUT_STORE `none` versus a directory (a first success then also queues",
        "its archive in the same statement), alternating. Archive throughput: one `worker`",
        "archiving the simulator's PNG (1280 × 720) from a loopback server for every succeeded",
        "job, from the worker's start to the last `done`, OUTPUT_ARCHIVE_CONCURRENCY 4, beside a",
        "bare loop (GET, SHA-256, write; 4 at a time) in the same run (`bench/archive_bench.py`).",
        "",
        "| backend | ingest off req/s (p99 ms) | ingest on req/s (p99 ms) | on / off | target | "
        "outputs archived | seconds | outputs/s | bare loop/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, a in archive.items():
        off, on, arch = a["webhook"]["off"], a["webhook"]["on"], a["archive"]
        ratio = on["rps"] / off["rps"]
        target = TARGETS["archive_ingest_ratio"]
        lines.append(
            f"| {backend} | {off['rps']:.0f} ({off['p99_ms']:.1f}) | {on['rps']:.0f} "
            f"({on['p99_ms']:.1f}) | {ratio:.2f} | ≥ {target}: {verdict(ratio >= target)} | "
            f"{arch['stored']} of {arch['outputs']} | {arch['seconds']} | {arch['per_second']} | "
            f"{arch['anchor_per_second']} |"
        )
    lines += ["", (HERE / "ANALYSIS.md").read_text().strip(), ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
