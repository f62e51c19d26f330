"""Where archived outputs are kept (OUTPUT_STORE): a local directory or an S3-compatible
bucket, through obstore's one async API for both; `none` keeps nothing."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore.store import LocalStore, S3Store

if TYPE_CHECKING:
    from obstore.store import ClientConfig


# The standard variables an S3 output store reads (besides OUTPUT_STORE_ENDPOINT).
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
)


class StoreUnusable(Exception):
    """The output store cannot keep an object: the message names it and says why."""


CHECK_PREFIX = "_outpaint-jobs-check"


class Objects:
    """Put, read, delete and (S3) sign objects by key."""

    def __init__(self, store: Any, *, signs: bool, name: str = "") -> None:
        self.store = store
        self.signs = signs
        # OUTPUT_STORE as it is used: s3://bucket/prefix [at ENDPOINT], or a directory. Each
        # output records it, and is read (and deleted) from there however OUTPUT_STORE moves.
        self.name = name
        self._others: dict[str, Objects] = {}

    def holding(self, name: str | None) -> Objects:
        """The store an output names: this one (also for outputs recorded before stores
        were, with no name), or an earlier one, opened once by its name with the same
        credentials (a directory is not created)."""
        if name is None or name == self.name:
            return self
        other = self._others.get(name)
        if other is None:
            if name.startswith("s3://"):
                spec, _, endpoint = name.partition(" at ")
                other = Objects.from_setting(spec, endpoint or None)
            else:
                other = Objects(LocalStore(name), signs=False, name=name)
            assert other is not None
            self._others[name] = other
        return other

    async def check(self) -> None:
        """Write a small object, read it back and delete it; StoreUnusable, naming this
        store and why, when any step fails (a missing bucket, no credentials, a read-only
        or full disk)."""
        key = f"{CHECK_PREFIX}/{uuid.uuid4().hex}"
        data = f"outpaint-jobs checks {key}".encode()
        try:
            await self.put(key, data)
            back = await self.read(key)
            await obstore.delete_async(self.store, key)
        except Exception as exc:
            raise StoreUnusable(f"{self.name}: {describe(exc)}") from exc
        if back != data:
            raise StoreUnusable(f"{self.name}: an object read back differs from what was written")

    @classmethod
    def from_setting(cls, spec: str, endpoint: str | None = None) -> Objects | None:
        """`none`; `s3://bucket/prefix` (credentials and region from the standard AWS
        variables, `endpoint` for an S3-compatible server); otherwise a directory."""
        spec = spec.strip()
        if spec.lower() == "none":
            return None
        if spec.startswith("s3://"):
            bucket, _, prefix = spec.removeprefix("s3://").partition("/")
            config: dict[str, Any] = {}
            for key, env in (
                ("access_key_id", "AWS_ACCESS_KEY_ID"),
                ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                ("session_token", "AWS_SESSION_TOKEN"),
            ):
                if os.environ.get(env):
                    config[key] = os.environ[env]
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL")
            config["region"] = region or "us-east-1"
            if endpoint:
                config["endpoint"] = endpoint
            options: ClientConfig = {"allow_http": bool(endpoint and endpoint.startswith("http:"))}
            if prefix.strip("/"):
                config["prefix"] = prefix.strip("/")
            store = S3Store(bucket, client_options=options, **config)
            where = f" at {endpoint}" if endpoint else ""
            return cls(store, signs=True, name=f"s3://{bucket}/{prefix.strip('/')}{where}")
        path = Path(spec).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(LocalStore(str(path), mkdir=True), signs=False, name=str(path))

    async def put(
        self, key: str, data: bytes, *, content_type: str | None = None, sha256: str | None = None
    ) -> None:
        """Keep `data` under `key`. In S3 the object describes itself: its `Content-Type`
        (what a signed URL answers with) and its SHA-256 as metadata (`x-amz-meta-sha256`);
        a directory keeps the bytes alone (both are in the output's row)."""
        attributes: dict[str, str] = {}
        if self.signs and content_type:
            attributes["Content-Type"] = content_type
        if self.signs and sha256:
            attributes["sha256"] = sha256
        if attributes:
            await obstore.put_async(self.store, key, data, attributes=attributes)
        else:
            await obstore.put_async(self.store, key, data)

    async def read(self, key: str) -> bytes:
        result = await obstore.get_async(self.store, key)
        return bytes(await result.bytes_async())

    async def stream(self, key: str) -> tuple[int, AsyncIterator[bytes]]:
        """(size, chunks) of the object; FileNotFoundError when it is not there."""
        result = await obstore.get_async(self.store, key)
        size = int(result.meta["size"])

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream():
                yield bytes(chunk)

        return size, chunks()

    async def delete(self, key: str) -> None:
        """Gone afterwards, whether or not it was there."""
        with contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self.store, key)

    async def sign(self, key: str, seconds: float) -> str | None:
        """A short-lived URL for reading the object directly (S3 only)."""
        if not self.signs:
            return None
        url = await obstore.sign_async(self.store, "GET", key, timedelta(seconds=seconds))
        return str(url)


class StoreHealth:
    """Whether the output store can keep an object (readiness): `check()` run again at most
    every `every` seconds (each a write, a read and a delete), the last answer kept."""

    def __init__(
        self,
        objects: Objects,
        every: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.objects = objects
        self.every = every
        self.timeout = timeout
        self.clock = clock
        self._checked_at: float | None = None
        self._status = "ok"
        self._lock = asyncio.Lock()

    async def status(self) -> str:
        """`ok`, or `failing: ` and why."""
        async with self._lock:  # concurrent probes share one check
            if self._checked_at is None or self.clock() - self._checked_at >= self.every:
                try:
                    async with asyncio.timeout(self.timeout):
                        await self.objects.check()
                    self._status = "ok"
                except StoreUnusable as exc:
                    self._status = f"failing: {exc}"
                except TimeoutError:
                    self._status = f"failing: {self.objects.name}: no answer in {self.timeout:g} s"
                self._checked_at = self.clock()
            return self._status


def failure_kind(exc: BaseException) -> str:
    """What kind of refusal a store error is, for counting and alerting: missing_bucket,
    denied, disk_full, unreachable, or error."""
    code = _S3_ERROR.search(str(exc))
    if code is not None:
        name = code.group(1)
        if name == "NoSuchBucket":
            return "missing_bucket"
        if name in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return "denied"
        if name in ("SlowDown", "ServiceUnavailable", "InternalError"):
            return "unreachable"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full"
    if isinstance(exc, PermissionError) or (
        isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    ):
        return "denied"
    text = str(exc).lower()
    if isinstance(exc, ConnectionError | TimeoutError) or "connect" in text or "timed out" in text:
        return "unreachable"
    if "no space left" in text:
        return "disk_full"
    return "error"


_S3_ERROR = re.compile(r"<Code>([^<]{1,100})</Code>\s*<Message>([^<]{0,300})</Message>")


def describe(exc: BaseException) -> str:
    """An error of the store in one short line: S3's own code and message when its answer
    carries them (`NoSuchBucket: The specified bucket does not exist`), else the error's
    kind and the first line of its text."""
    text = str(exc).strip()
    s3 = _S3_ERROR.search(text)
    if s3 is not None:
        return f"{s3.group(1)}: {s3.group(2)}"
    first = text.splitlines()[0] if text else ""
    first = first if len(first) <= 200 else first[:199] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
