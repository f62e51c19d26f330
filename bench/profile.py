"""Where a hot path's time goes: the service under wrk load, sampled by py-spy.

    python -m bench.profile --backend postgresql|sqlite --path webhook|create [--seconds 10]

Seeds a database as `bench.http_bench` does, serves it (`serve --no-workers`, one
process), runs wrk on the path while `py-spy record` samples the process (200 Hz, idle
frames dropped), and prints the functions that hold the most samples: by own time, and by
time including callees, as shares of all samples.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import subprocess
import tempfile
from pathlib import Path

from bench.http_bench import (
    database,
    drop_databases,
    free_port,
    lua_scripts,
    prepare,
    start_service,
    wrk,
)


def summarise(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] + ")"
            for f in stack.split(";")
        ]
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples", "", "own time:"]
    lines += [f"  {100 * n / samples:5.1f} %  {name}" for name, n in own.most_common(top)]
    lines += ["", "including callees:"]
    lines += [f"  {100 * n / samples:5.1f} %  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--path", choices=["webhook", "create", "create_many"], default="webhook")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--repeat", type=int, default=0, help="no profile: run wrk this many times, print each"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="outpaint-profile-"))
    try:
        url, _anchor = database(args.backend, workdir, "profile")
        key, others = asyncio.run(prepare(url))
        scripts = lua_scripts(workdir, key, others)
        port = free_port()
        service = start_service(url, port, workdir)
        raw = workdir / "profile.txt"
        path = "/v1/jobs" if args.path.startswith("create") else ""
        url = f"http://127.0.0.1:{port}{path}"
        try:
            if args.repeat:
                for _ in range(args.repeat):
                    r = wrk(url, scripts[f"service_{args.path}"], args.seconds)
                    print(f"{args.backend} {args.path}: {r['rps']:.0f} req/s, p99 {r['p99_ms']} ms")
                return
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    *(["--native"] if os.environ.get("NATIVE") else []),
                    "-r",
                    "200",
                    "-d",
                    str(args.seconds),
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                    "-p",
                    str(service.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            result = wrk(url, scripts[f"service_{args.path}"], args.seconds)
            spy.wait(60)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(30)
        print(f"{args.backend} {args.path}: {result['rps']:.0f} req/s, p99 {result['p99_ms']} ms")
        print(summarise(raw, args.top))
    finally:
        if args.backend == "postgresql":
            drop_databases()


if __name__ == "__main__":
    main()
