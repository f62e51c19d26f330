"""A real S3-compatible server on loopback for the output store's tests: moto's standalone
server (`python -m moto.server`) in a process of its own, one bucket per test."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.live import free_port
from tests.processes import clean_env

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key-id",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_REGION": "us-east-1",
}


@dataclass
class S3:
    endpoint: str
    bucket: str

    @property
    def store(self) -> str:
        return f"s3://{self.bucket}/outputs"

    def objects(self) -> list[str]:
        """Every key in the bucket (moto answers unsigned listings)."""
        listing = httpx.get(f"{self.endpoint}/{self.bucket}?list-type=2", timeout=5).text
        return [part.split("</Key>")[0] for part in listing.split("<Key>")[1:]]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{endpoint}/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError("moto's S3 server did not start")
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    # obstore's requests are made in Rust, out of the loopback guard's sight: whatever a
    # test forgets to pass, the default endpoint is this server.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    bucket = f"outputs-{uuid.uuid4().hex[:12]}"
    assert httpx.put(f"{s3_server}/{bucket}", timeout=5).status_code == 200
    return S3(s3_server, bucket)
