"""The console script as a real process: keys, serve (with its one-time admin key), and a
clean exit on SIGTERM."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live import free_port
from tests.processes import clean_env, spawn, wait_up
from tests.s3 import CREDENTIALS, S3

pytestmark = pytest.mark.e2e


# A provider that is never called in these tests (no job is created), on loopback.
REAL_PROVIDER = {
    "MODELSLAB_API_KEY": "test-key",
    "MODELSLAB_BASE_URL": "http://127.0.0.1:9/api/v6",
    "PUBLIC_BASE_URL": "http://127.0.0.1:9",
}


def uvicorn_workers(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """`uvicorn service.app:app_from_env --factory --workers 2` on loopback."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "service.app:app_from_env",
            "--factory",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli_env(db_url: str, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update(DATABASE_URL=db_url, WEBHOOK_SECRET="e2e-secret", **extra)
    return env


def run_migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=cli_env(db_url),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_create_list_revoke(db_url: str) -> None:
    created = run_cli(
        db_url, "keys", "create", "--name", "team-a", "--scopes", "jobs:write,jobs:read"
    )
    assert created.returncode == 0, created.stderr
    secret, key = created.stdout.strip().splitlines()[-2:]
    assert secret.startswith("whsec_") and key.startswith("opj_")
    second = run_cli(db_url, "keys", "create", "--name", "team-a", "--scopes", "jobs:read")
    assert len(second.stdout.strip().splitlines()) == 1  # no new secret for a known client
    listed = run_cli(db_url, "keys", "list")
    assert key[:12] in listed.stdout and key not in listed.stdout
    assert run_cli(db_url, "keys", "revoke", key[:12]).returncode == 0
    assert "revoked" in run_cli(db_url, "keys", "list").stdout
    assert run_cli(db_url, "keys", "revoke", key[:12]).returncode == 1
    bad = run_cli(db_url, "keys", "create", "--name", "x", "--scopes", "root")
    assert bad.returncode == 2 and "unknown scopes" in bad.stderr


def test_serve_keeps_its_admin_key_out_of_logs_serves_a_job_and_stops_on_sigterm(
    db_url: str, tmp_path: Path
) -> None:
    """Its stdout is a pipe (as in a container): the first admin key goes to a file only
    its owner reads, its path to the log, the key itself to neither output."""
    port = free_port()
    key_file = tmp_path / "admin-key"
    env = cli_env(
        db_url,
        PORT=str(port),
        SIM_ETA_SECONDS="0.2",
        SWEEP_INTERVAL_SECONDS="0.2",
        ADMIN_KEY_FILE=str(key_file),
    )
    proc = spawn(["serve"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base, "/healthz", seconds=20)
        key = key_file.read_text().strip()
        assert key.startswith("opj_") and key_file.stat().st_mode & 0o777 == 0o600
        headers = {"Authorization": f"Bearer {key}"}
        job = httpx.post(
            f"{base}/v1/jobs",
            headers=headers,
            timeout=5,
            json={"image": "https://example.invalid/a.png", "width": 256, "height": 192},
        ).json()
        for _ in range(200):
            status = httpx.get(f"{base}/v1/jobs/{job['id']}", headers=headers, timeout=5).json()[
                "status"
            ]
            if status == "succeeded":
                break
            time.sleep(0.05)
        assert status == "succeeded"
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    # uvicorn re-raises SIGTERM after a graceful shutdown, so the process dies of it.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err and "workers stopped" in err
    assert "/webhooks/modelslab/" in err and re.search(r"/webhooks/modelslab/\d+\.", err) is None
    assert time.monotonic() - started < 15
    assert "built-in simulator" in err
    assert key not in out and key not in err
    assert f"an admin key was created and written to {key_file} (readable by its owner" in err
    # A second start finds a key and makes none.
    key_file.unlink()
    proc2 = spawn(["serve"], env)
    try:
        wait_up(f"{base}", "/healthz")
    finally:
        proc2.send_signal(signal.SIGTERM)
        out2, err2 = proc2.communicate(timeout=20)
    assert "opj_" not in out2 + err2 and not key_file.exists()


def test_serve_on_a_terminal_prints_its_admin_key_once(tmp_path: Path) -> None:
    """`make serve` in a terminal: a person is there, so the key is shown, not filed."""
    import pty

    port = free_port()
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", PORT=str(port))
    assert run_migrate(env).returncode == 0
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        stdout=terminal,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    os.close(terminal)
    try:
        wait_up(f"http://127.0.0.1:{port}", "/healthz", seconds=20)
        shown = os.read(controller, 4096).decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        os.close(controller)
    assert "It is shown only now" in shown and re.search(r"opj_\S{40,}", shown)
    assert not (tmp_path / "outpaint-jobs.admin-key").exists()


def test_prune_command(db_url: str) -> None:
    assert run_cli(db_url, "prune", "--older-than", "2h").returncode == 2
    done = run_cli(db_url, "prune", "--older-than", "30d")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 0 finished jobs")


def test_worker_alone_and_serve_without_workers_stop_on_sigterm(db_url: str) -> None:
    port = free_port()
    env = cli_env(db_url, PORT=str(port), STOP_GRACE_SECONDS="2", **REAL_PROVIDER)
    api = spawn(["serve", "--no-workers"], env)
    worker_port = free_port()
    worker = spawn(["worker", "--port", str(worker_port)], env)
    try:
        wait_up(f"http://127.0.0.1:{port}", "/healthz")
        wait_up(f"http://127.0.0.1:{worker_port}", "/readyz")
        # The worker role serves probes and metrics, not the jobs API.
        assert httpx.get(f"http://127.0.0.1:{worker_port}/v1/jobs", timeout=1).status_code == 404
        assert httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=1).status_code == 200
    finally:
        started = time.monotonic()
        for p in (api, worker):
            p.send_signal(signal.SIGTERM)
        _, api_err = api.communicate(timeout=20)
        _, worker_err = worker.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert "workers started" not in api_err  # --no-workers: the API alone
    assert "workers started" in worker_err and "workers stopped" in worker_err
    assert worker.returncode in (0, -signal.SIGTERM), worker_err


def test_keys_rotate_secret_and_set_callback(db_url: str) -> None:
    created = run_cli(
        db_url,
        "keys",
        "create",
        "--name",
        "team-c",
        "--scopes",
        "jobs:write",
        "--callback-url",
        "https://hooks.example.invalid/cb",
    )
    first_secret = created.stdout.strip().splitlines()[-2]
    rotated = run_cli(db_url, "keys", "rotate-secret", "team-c")
    assert rotated.returncode == 0 and rotated.stdout.strip().startswith("whsec_")
    assert rotated.stdout.strip() != first_secret and "old secret keeps signing" in rotated.stderr
    assert run_cli(db_url, "keys", "rotate-secret", "nobody").returncode == 1
    assert run_cli(db_url, "keys", "set-callback", "team-c").stdout.strip().endswith("none")


def test_json_logs_parse_line_by_line_and_carry_request_and_job_ids(db_url: str) -> None:
    import json

    created = run_cli(
        db_url, "keys", "create", "--name", "logs", "--scopes", "jobs:write,jobs:read"
    )
    key = created.stdout.split()[-1]
    port = free_port()
    env = cli_env(
        db_url,
        PORT=str(port),
        LOG_FORMAT="json",
        SIM_ETA_SECONDS="0.2",
        SWEEP_INTERVAL_SECONDS="0.2",
    )
    proc = spawn(["serve"], env)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": "req-from-client-42"}
    try:
        wait_up(f"{base}", "/healthz")
        r = httpx.post(
            f"{base}/v1/jobs",
            headers=headers,
            json={"image": "https://example.invalid/a.png"},
            timeout=5,
        )
        assert r.headers["x-request-id"] == "req-from-client-42"
        job = r.json()
        for _ in range(200):
            if (
                httpx.get(f"{base}/v1/jobs/{job['id']}", headers=headers, timeout=5).json()[
                    "status"
                ]
                == "succeeded"
            ):
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line parses
    assert lines and all({"ts", "level", "logger", "message"} <= set(e) for e in lines)
    created_line = [e for e in lines if e["message"].startswith("job created")]
    assert created_line and created_line[0]["request_id"] == "req-from-client-42"
    assert created_line[0]["job_id"] == job["id"] and created_line[0]["track_id"] == job["track_id"]
    assert any(e["logger"] == "uvicorn.access" and e.get("request_id") for e in lines)
    assert any(e["logger"] == "service.submitter" and e.get("job_id") == job["id"] for e in lines)
    assert any(
        e["logger"] == "service.webhooks" and e.get("track_id") == job["track_id"] for e in lines
    )
    assert key not in err


def test_submit_wait_then_jobs_list_show_watch(db_url: str) -> None:
    created = run_cli(
        db_url, "keys", "create", "--name", "human", "--scopes", "jobs:write,jobs:read"
    )
    key = created.stdout.split()[-1]
    port = free_port()
    env = cli_env(db_url, PORT=str(port), SIM_ETA_SECONDS="0.3", SWEEP_INTERVAL_SECONDS="0.2")
    server = spawn(["serve"], env)
    try:
        wait_up(f"http://127.0.0.1:{port}", "/healthz")
        submitted = subprocess.run(
            [
                sys.executable,
                "-m",
                "service",
                "submit",
                "--image",
                "https://example.invalid/a.png",
                "--prompt",
                "a lake",
                "--width",
                "256",
                "--height",
                "192",
                "--wait",
                "--api-url",
                f"http://127.0.0.1:{port}",
                "--key",
                key,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert submitted.returncode == 0, submitted.stderr
        lines = submitted.stdout.strip().splitlines()
        assert "queued" in lines[0] or "processing" in lines[0]
        assert "succeeded" in lines[-1] and ".png" in lines[-1]
        job_id = lines[-1].split()[0]
        listed = run_cli(db_url, "jobs", "list", "--status", "succeeded")
        assert job_id in listed.stdout and listed.stdout.startswith("ID")
        shown = run_cli(db_url, "jobs", "show", job_id)
        assert '"status": "succeeded"' in shown.stdout and "processing → succeeded" in shown.stdout
        watched = run_cli(db_url, "jobs", "watch", job_id)
        assert watched.returncode == 0 and "succeeded" in watched.stdout
        assert run_cli(db_url, "jobs", "show", "job_nope").returncode == 1
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=20)
    # it followed the job's event stream, whose last message is the settled job: no polling,
    # not even a read at the end
    assert log.count(f'"GET /v1/jobs/{job_id}/events HTTP/1.1" 200') >= 1
    assert log.count(f'"GET /v1/jobs/{job_id} HTTP/1.1" 200') == 0


def test_multi_worker_uvicorn_metrics_are_summed_not_double_counted(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Without PROMETHEUS_MULTIPROC_DIR each worker answers with its own share (seen: 4 and
    16); with it, every scrape sees the sum."""
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    mp = tmp_path / "prom"
    mp.mkdir()
    env = cli_env(
        db_url,
        PROMETHEUS_MULTIPROC_DIR=str(mp),
        PORT=str(port),
        **REAL_PROVIDER,
    )
    proc = uvicorn_workers(port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}", "/healthz")
        for _ in range(20):  # fresh connections: spread over both workers
            assert (
                httpx.post(f"{base}/webhooks/modelslab/1.forged", json={}, timeout=5).status_code
                == 404
            )
        seen = set()
        for _ in range(6):
            text = httpx.get(f"{base}/metrics", timeout=5).text
            [family] = [
                f
                for f in text_string_to_metric_families(text)
                if f.name == "outpaint_webhooks_received"
            ]
            seen.add(
                sum(
                    s.value
                    for s in family.samples
                    if s.labels.get("outcome") == "unknown_token" and s.name.endswith("_total")
                )
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert seen == {20.0}


def test_an_installed_wheel_runs_from_any_directory_and_says_where_migrations_are(
    db_url: str, tmp_path: Path
) -> None:
    """The package away from the source tree, as a wheel installs it: every subcommand but
    the migrating ones works from anywhere; those name OUTPAINT_ROOT."""
    root = Path(__file__).resolve().parents[2]
    site = tmp_path / "site"  # what a wheel installs: the package and its data, nothing else
    shutil.copytree(
        root / "service", site / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = cli_env(db_url, PYTHONPATH=os.pathsep.join([str(site), os.environ["PYTHONPATH"]]))
        env.pop("OUTPAINT_ROOT", None)
        env.update(extra)
        code = "import sys, service.cli; sys.exit(service.cli.main(sys.argv[1:]))"
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    where = run("jobs", "list")
    assert where.returncode == 0, where.stderr
    refused = run("migrate")
    assert refused.returncode == 2 and "OUTPAINT_ROOT" in refused.stderr
    assert run("migrate", OUTPAINT_ROOT=str(root)).returncode == 0


def test_an_output_store_that_cannot_keep_outputs_stops_serve_and_worker(
    db_url: str, s3: S3
) -> None:
    """A missing bucket (moto's S3 server on loopback): both roles exit at once naming the
    store and S3's reason, instead of holding every archive and callback later."""
    missing = f"s3://missing-{s3.bucket}/p"
    store = {"OUTPUT_STORE": missing, "OUTPUT_STORE_ENDPOINT": s3.endpoint, **CREDENTIALS}
    for args, extra in ((["serve"], {}), (["worker"], REAL_PROVIDER)):
        done = subprocess.run(
            [sys.executable, "-m", "service", *args],
            env=cli_env(db_url, PORT=str(free_port()), **store, **extra),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (args, done.stderr[-500:])
        assert f"the output store cannot keep outputs ({missing} at {s3.endpoint}" in done.stderr
        assert "NoSuchBucket: The specified bucket does not exist" in done.stderr


def test_a_configuration_that_cannot_work_is_refused_at_start(db_url: str) -> None:
    """A real provider without PUBLIC_BASE_URL, a worker with no provider, the built-in
    simulator under several uvicorn workers: each stops at once, saying why."""
    no_public = {k: v for k, v in REAL_PROVIDER.items() if k != "PUBLIC_BASE_URL"}
    for args, extra, reason in (
        (["serve"], no_public, "PUBLIC_BASE_URL"),
        (["worker"], no_public, "PUBLIC_BASE_URL"),
        (["worker"], {}, "no simulator of its own"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "service", *args],
            env=cli_env(db_url, PORT=str(free_port()), **extra),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and reason in done.stderr, (args, done.stderr[-500:])
    port = free_port()
    proc = uvicorn_workers(port, cli_env(db_url))
    try:
        time.sleep(3)  # uvicorn's workers start, refuse, and are reported
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "cannot serve several worker processes" in err
