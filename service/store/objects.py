"""Where archived outputs are kept (OUTPUT_STORE): a local directory or an S3-compatible
bucket, through obstore's one async API for both; `none` keeps nothing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
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


class Objects:
    """Put, read, delete and (S3) sign objects by key."""

    def __init__(self, store: Any, *, signs: bool) -> None:
        self.store = store
        self.signs = signs

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
            return cls(store, signs=True)
        path = Path(spec).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(LocalStore(str(path), mkdir=True), signs=False)

    async def put(self, key: str, data: bytes) -> None:
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
