"""Real processes of the console script, for e2e tests."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.live import free_port


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env = args, env
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "service", *args], env=env, stdout=self.log, stderr=self.log
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        self.popen.wait(timeout=20)
        self.log.close()


async def wait_healthy(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"{url}/healthz", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def wait_up(url: str, path: str = "/healthz", seconds: float = 30) -> None:
    """Block until `url + path` answers 200 (for tests that drive a process synchronously)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url}{path} did not come up")


# A standalone `outpaint-jobs simulator` for tests: it answers the services' key
# (MODELSLAB_API_KEY "test-key") and reaches their webhooks on loopback.
STANDALONE_SIM = {"SIM_API_KEY": "test-key", "SIM_ALLOW_PRIVATE_URLS": "true"}


def clean_env() -> dict[str, str]:
    """This process's environment without any simulator, provider or output-store setting a
    developer's shell may carry, so each test says exactly which it wants."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "MODELSLAB_"))}
    env["OUTPUT_STORE"] = "none"  # no ./outputs where the test runs; archiving tests set one
    return env


def crash_worker_env(db_url: str, **extra: str) -> dict[str, str]:
    """A `worker` for crash tests: short leases (2 s), reaching loopback, and a provider it
    never calls (no job is queued) on loopback."""
    env = clean_env()
    env.update(
        DATABASE_URL=db_url,
        ALLOW_PRIVATE_CALLBACKS="true",
        LEASE_SECONDS="2",
        PROVIDER_TIMEOUT_SECONDS="1",
        SUBMIT_IDLE_SECONDS="0.1",
        MODELSLAB_API_KEY="test-key",
        MODELSLAB_BASE_URL="http://127.0.0.1:9/api/v6",
        PUBLIC_BASE_URL="http://127.0.0.1:9",
    )
    env.update(extra)
    return env


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`python -m service ARGS…` with its output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "service", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.asynccontextmanager
async def made_serve(cwd: Path, **env: str) -> AsyncIterator[tuple[str, str]]:
    """`outpaint-jobs migrate` then `outpaint-jobs serve`, as `make serve` runs them, in
    `cwd` with the defaults (the built-in simulator, outputs kept in ./outputs) and `env`
    on top: (its URL, the admin key its first start made). Its stdout is no terminal, so
    the key is in a file: ./outpaint-jobs.admin-key beside the default database, else
    ADMIN_KEY_FILE. Stopped with SIGTERM."""
    port = env.get("PORT") or str(free_port())
    environment = clean_env()
    del environment["OUTPUT_STORE"]  # the default: ./outputs, here `cwd`
    environment.update(env, PORT=port)
    key_file = cwd / "outpaint-jobs.admin-key"
    if "DATABASE_URL" in env:
        environment["ADMIN_KEY_FILE"] = str(key_file)
    command = [sys.executable, "-m", "service"]
    migrated = subprocess.run(
        [*command, "migrate"], env=environment, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    serve = subprocess.Popen(
        [*command, "serve"],
        env=environment,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url)  # the key is written before the server starts
        key = key_file.read_text().strip()
        assert key.startswith("opj_") and key_file.stat().st_mode & 0o777 == 0o600
        yield url, key
    finally:
        serve.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(serve.communicate, timeout=20)
        assert "opj_" not in out  # never printed where a log collector reads
