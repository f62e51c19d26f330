"""A TypeScript team's first hour: `openapi-typescript` with no options makes `schema.d.ts`
from the running service's /openapi.json, the README's flow (create with only `image` and
`prompt`, get, list, download an output) type-checks under `tsc --strict`, and runs in Node
against the service. The tools are the ones `make test` installs from
tests/clients/typescript/package-lock.json; Node is Debian's `nodejs`."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Start
from tests.readme import block

pytestmark = pytest.mark.e2e

TOOLS = Path(__file__).resolve().parents[1] / "clients" / "typescript"
GENERATE = "**1. Generate a client.**"
TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "target": "es2022",
        "module": "nodenext",
        "moduleResolution": "nodenext",
        "types": [],
    },
    "files": ["flow.ts"],
}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=180)


async def test_the_readmes_typescript_flow_type_checks_strictly_and_runs(
    service: Start, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "install Debian's nodejs and npm (apt-get install nodejs npm); .ci/run does"
    assert (TOOLS / "node_modules" / ".bin" / "tsc").exists(), (
        "the TypeScript tools are installed by `make test` (npm ci in tests/clients/typescript)"
    )
    svc = await service(sim_eta_seconds=0.3, output_store=str(tmp_path / "outputs"))
    base = str(svc.client.base_url).rstrip("/")
    token = svc.headers["Authorization"].removeprefix("Bearer ")

    (tmp_path / "node_modules").symlink_to(TOOLS / "node_modules")
    (tmp_path / "package.json").write_text(json.dumps({"private": True, "type": "module"}))
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    # the README's generate command, with no options, against this service
    [install, generate] = block(GENERATE, "sh", 1).strip().splitlines()
    assert install == "npm install openapi-fetch && npm install -D openapi-typescript typescript"
    assert generate == "npx openapi-typescript http://127.0.0.1:8000/openapi.json -o schema.d.ts"
    made = await asyncio.to_thread(
        _run,
        [node, str(TOOLS / "node_modules/openapi-typescript/bin/cli.js"), f"{base}/openapi.json",
         "-o", "schema.d.ts"],
        tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    schema = (tmp_path / "schema.d.ts").read_text()
    assert "prompt?: string" in schema and "settled_at: string | null" in schema

    flow = block(GENERATE, "ts")
    assert 'const API = "http://127.0.0.1:8000";' in flow and 'const KEY = "opj_...";' in flow
    flow = flow.replace("http://127.0.0.1:8000", base).replace('"opj_..."', json.dumps(token))
    (tmp_path / "flow.ts").write_text(flow)
    tsc = str(TOOLS / "node_modules/typescript/bin/tsc")
    checked = await asyncio.to_thread(_run, [node, tsc, "-p", "."], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # tsc --strict
    ran = await asyncio.to_thread(_run, [node, "flow.js"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    status, url, listed, size = ran.stdout.split()
    assert status == "succeeded" and url.startswith(f"{base}/v1/jobs/job_")
    assert int(listed) == 1
    job = await svc.get(url.split("/")[-3])
    assert job["settled_at"] and job["outputs"][0]["bytes"] == int(size)
    image = await svc.client.get(url, headers=svc.headers)
    assert len(image.content) == int(size)
