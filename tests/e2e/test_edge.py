"""The HTTP edge against a real `serve` process whose descriptor limit is 256: 300
connections that each send half a header line are answered (503 past the connection budget,
408 at the header deadline) and closed, the log stays short, and /healthz answers again at
once; a 100 KB header is refused; a body trickled a byte a second is ended."""

from __future__ import annotations

import asyncio
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.live import free_port
from tests.processes import clean_env, wait_healthy

pytestmark = pytest.mark.e2e

DEADLINE = 2.0  # RECEIVE_HEADERS_SECONDS and RECEIVE_BODY_SECONDS here


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """`serve` (SQLite, the built-in simulator) limited to 256 descriptors; its log file."""
    port = free_port()
    env = clean_env()
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'edge.db'}",
        PORT=str(port),
        RECEIVE_HEADERS_SECONDS=str(DEADLINE),
        RECEIVE_BODY_SECONDS=str(DEADLINE),
        ADMIN_KEY_FILE=str(tmp_path / "admin-key"),
    )
    command = [sys.executable, "-m", "service"]
    subprocess.run([*command, "migrate"], env=env, check=True, capture_output=True, timeout=60)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "serve"], env=env, stdout=out, stderr=out, preexec_fn=limit
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url)
        yield url, log
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 20)


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """What the server said before it closed the connection (b"reset" when it closed it
    with what we sent still unread: refused outright)."""
    try:
        return await reader.read()  # to EOF: the server closes it
    except ConnectionResetError:
        return b"reset"


async def test_half_open_connections_are_answered_closed_and_cost_few_lines(
    server: tuple[str, Path],
) -> None:
    url, log = server
    port = int(url.rsplit(":", 1)[1])
    before = len(log.read_text().splitlines())
    opened = time.monotonic()
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
    for _reader, writer in conns:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: a")  # half a header line, then nothing
        await writer.drain()
    answers = await asyncio.wait_for(
        asyncio.gather(*(_answer(reader) for reader, _ in conns)), DEADLINE + 10
    )
    closed = time.monotonic()
    for _, writer in conns:
        writer.close()
    statuses = [a.split(b"\r\n", 1)[0] for a in answers]
    refused = statuses.count(b"HTTP/1.1 503 Service Unavailable") + statuses.count(b"reset")
    late = statuses.count(b"HTTP/1.1 408 Request Timeout")
    assert refused + late == 300, set(statuses)
    assert 0 < refused < 300 and late > 0  # past the budget at once, the others at the deadline
    assert closed - opened < DEADLINE + 5
    async with httpx.AsyncClient() as client:  # at once, for everyone else
        ok = await client.get(f"{url}/healthz", timeout=5)
    assert ok.status_code == 200 and time.monotonic() - closed < 3
    lines = log.read_text().splitlines()[before:]
    assert len(lines) < 100, lines[:20]
    assert not [line for line in lines if "Traceback" in line or "out of system resource" in line]
    metrics = (await httpx.AsyncClient().get(f"{url}/metrics", timeout=5)).text
    assert f'outpaint_http_refused_total{{reason="connection_budget"}} {refused}.0' in metrics
    assert f'outpaint_http_refused_total{{reason="header_timeout"}} {late}.0' in metrics


async def test_a_100_kb_header_is_refused(server: tuple[str, Path]) -> None:
    url, _log = server
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(_answer(reader), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_a_trickled_body_is_ended_at_its_deadline(server: tuple[str, Path]) -> None:
    url, log = server
    port = int(url.rsplit(":", 1)[1])
    key = (log.parent / "admin-key").read_text().strip()  # with a key, the body is read
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/jobs HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    started = time.monotonic()

    async def trickle() -> None:
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(1)

    dripping = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(_answer(reader), DEADLINE + 10)
    finally:
        dripping.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < DEADLINE + 3
