"""The output store's own check (a write, a read back, a delete) against a real S3-compatible
server on loopback and a real directory, and readiness's cache of it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.store.objects import CHECK_PREFIX, Objects, StoreHealth, StoreUnusable
from tests.s3 import S3


async def test_the_check_keeps_nothing_and_names_a_store_that_refuses(
    s3: S3, tmp_path: Path
) -> None:
    good = Objects.from_setting(s3.store, s3.endpoint)
    assert good is not None
    await good.check()
    assert not [k for k in s3.objects() if CHECK_PREFIX in k]  # it cleans up after itself
    local = Objects.from_setting(str(tmp_path / "out"))
    assert local is not None
    await local.check()
    assert not list((tmp_path / "out").rglob("*.*"))
    missing = Objects.from_setting(f"s3://gone-{s3.bucket}/p", s3.endpoint)
    assert missing is not None
    with pytest.raises(StoreUnusable) as refused:
        await missing.check()
    assert str(refused.value) == (
        f"s3://gone-{s3.bucket}/p at {s3.endpoint}: "
        "NoSuchBucket: The specified bucket does not exist"
    )


async def test_readiness_checks_the_store_at_most_every_30_seconds(s3: S3) -> None:
    bucket = f"soon-{s3.bucket}"
    objects = Objects.from_setting(f"s3://{bucket}/p", s3.endpoint)
    assert objects is not None
    seconds = [1000.0]
    health = StoreHealth(objects, every=30.0, clock=lambda: seconds[0])
    assert (await health.status()).startswith(f"failing: s3://{bucket}/p")
    assert httpx.put(f"{s3.endpoint}/{bucket}", timeout=5).status_code == 200
    seconds[0] += 29.9
    assert (await health.status()).startswith("failing: ")  # the last answer, not asked again
    seconds[0] += 0.1
    assert await health.status() == "ok"


async def test_the_uvicorn_factory_refuses_a_store_that_cannot_keep_outputs(
    s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`uvicorn service.app:app_from_env --factory` calls the factory from inside its own
    event loop: the check runs all the same and stops the process with the store's name."""
    from service import logs
    from service.app import app_from_env

    monkeypatch.setattr(logs, "configure", lambda *_args: None)  # keep pytest's handlers
    monkeypatch.delenv("MODELSLAB_API_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    monkeypatch.setenv("OUTPUT_STORE", f"s3://gone-{s3.bucket}/p")
    monkeypatch.setenv("OUTPUT_STORE_ENDPOINT", s3.endpoint)
    with pytest.raises(SystemExit) as stopped:
        app_from_env()
    assert f"s3://gone-{s3.bucket}/p at {s3.endpoint}: NoSuchBucket" in str(stopped.value)
