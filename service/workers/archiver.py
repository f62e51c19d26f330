"""Archive one claimed job's outputs: download each through the address guard (bounded),
check it is an image, store it under a per-job key, and record the result. An output not
there yet is tried again with backoff until the archive's deadline; a failed archive never
changes the job's status."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import time
import warnings

import httpx
from PIL import Image

from service import metrics
from service.domain import archive
from service.netguard import Unresolvable, UnsafeCallback, guarded_client
from service.runtime.services import Runtime
from service.settings import SIMULATOR_MOUNT
from service.store.archives import ArchiveTask
from service.store.objects import Objects, StoreUnusable, describe, failure_kind
from service.throttle import Throttled

log = logging.getLogger("service.archiver")

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
TIMEOUT_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 10.0


class NotYet(Exception):
    """Nothing stored yet (404, a 5xx, a timeout, the store refusing the write): look again
    later. `args[0]` is why, as the job shows it."""


class StoreRefused(NotYet):
    """The output store refused the write: an outage of the store's, of `kind`."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class GiveUp(Exception):
    """This output will never be stored: `args[0]` is the reason (a short code)."""


class StoreGate:
    """Whether the output store takes writes, as this process last saw. After a refusal no
    archive is claimed (no output downloaded for nothing); the store is probed every
    `probe_seconds` (a small object written, read back, deleted), and the first good probe
    lets the waiting archives go at once. Every refusal, and every failed probe, is counted
    and said once per kind per interval."""

    def __init__(self, objects: Objects, probe_seconds: float = 2.0) -> None:
        self.objects = objects
        self.probe_seconds = probe_seconds
        self.down_since: float | None = None
        self._probed_at = float("-inf")
        self._said = Throttled(log)

    def refused(self, kind: str, reason: str) -> None:
        metrics.OUTPUT_STORE_ERRORS.labels(kind).inc()
        self._said.note(kind, "output store %s refused a write (%s)", self.objects.name, reason)
        if self.down_since is None:
            self.down_since = time.monotonic()
            self._probed_at = self.down_since

    async def open(self) -> bool:
        """May the archiver claim now? Probes a failing store at most every
        `probe_seconds`."""
        if self.down_since is None:
            return True
        now = time.monotonic()
        if now - self._probed_at < self.probe_seconds:
            return False
        self._probed_at = now
        try:
            await asyncio.wait_for(self.objects.check(), PROBE_TIMEOUT_SECONDS)
        except (StoreUnusable, TimeoutError) as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            self.refused(failure_kind(cause), describe(cause))
            return False
        log.warning(
            "output store %s takes writes again after %.1f s: archiving resumes",
            self.objects.name,
            now - self.down_since,
        )
        self.down_since = None
        return True


def output_url(base_url: str, public_id: str, n: int) -> str:
    return f"{base_url}/v1/jobs/{public_id}/outputs/{n}"


async def archive_job(
    ctx: Runtime, objects: Objects, task: ArchiveTask, owner: str, gate: StoreGate | None = None
) -> None:
    job = await ctx.store.jobs.get_job_by_id(task.job_id)
    if job is None:  # pruned meanwhile (its archive row went with it)
        return
    policy = ctx.settings.archive_policy()
    results: list[archive.Result] = []
    for n, url in enumerate(job.output):
        try:
            results.append(await _store_one(ctx, objects, job.public_id, n, url))
        except GiveUp as exc:
            results.append(archive.Unstored(n, url, str(exc.args[0])))
        except NotYet as exc:
            now = ctx.clock()
            miss = str(exc)
            refusal = exc.kind if isinstance(exc, StoreRefused) else None
            if refusal is not None and gate is not None:
                gate.refused(refusal, miss)
            retry = archive.after_miss(now, task.attempts, task.deadline_at, miss, policy)
            if retry is not None:
                await ctx.store.archives.retry(task, owner, now, retry, store_error=refusal)
                return
            results.append(archive.Unstored(n, url, archive.given_up(miss)))
    urls = [output_url(ctx.settings.base_url, job.public_id, n) for n in range(len(results))]
    settled = await ctx.store.archives.settle(task, owner, ctx.clock(), results, urls)
    if not settled:
        log.warning("archive of %s: the claim was taken over; not recorded", job.public_id)
        return
    for result in results:
        if isinstance(result, archive.Stored):
            metrics.ARCHIVED.labels("stored").inc()
            metrics.ARCHIVED_BYTES.inc(result.bytes)
        else:
            metrics.ARCHIVED.labels(result.reason).inc()
            log.warning("output %d of %s not archived: %s", result.n, job.public_id, result.reason)


async def _store_one(
    ctx: Runtime, objects: Objects, public_id: str, n: int, url: str
) -> archive.Stored:
    data = await _download(ctx, url)
    content_type, width, height = _inspect(data)
    key = f"{public_id}/{n}.{content_type.removeprefix('image/')}"
    digest = hashlib.sha256(data).hexdigest()
    try:
        await objects.put(key, data, content_type=content_type, sha256=digest)
    except Exception as exc:  # the store refusing writes: the job shows why; tried again
        raise StoreRefused(f"{archive.STORE_MISS}{describe(exc)}", failure_kind(exc)) from None
    return archive.Stored(
        n, url, key, digest, len(data), width, height, content_type, store=objects.name
    )


def _trusted(ctx: Runtime, url: str) -> bool:
    """The mounted simulator's own outputs (this service's address, often loopback)."""
    if not ctx.settings.uses_simulator:
        return False
    return url.startswith(f"{ctx.settings.base_url}{SIMULATOR_MOUNT}/outputs/")


async def _download(ctx: Runtime, url: str) -> bytes:
    limit = ctx.settings.output_max_bytes
    if not url.startswith(("http://", "https://")):
        raise GiveUp("refused")
    try:
        if _trusted(ctx, url):
            http = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, trust_env=False)
        else:
            http = await guarded_client(url, ctx.settings.allow_private_callbacks, TIMEOUT_SECONDS)
    except Unresolvable:
        raise NotYet("unresolvable") from None
    except UnsafeCallback:
        raise GiveUp("refused") from None
    try:
        async with http, http.stream("GET", url) as response:
            if response.status_code != 200:
                if response.status_code in (404, 408, 425, 429) or response.status_code >= 500:
                    raise NotYet(f"http_{response.status_code}")
                raise GiveUp(f"http_{response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isascii() and declared.isdigit() and int(declared) > limit:
                raise GiveUp("too_large")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    raise GiveUp("too_large")
            return bytes(data)
    except httpx.HTTPError as exc:
        raise NotYet(f"connection: {type(exc).__name__}") from None


def _inspect(data: bytes) -> tuple[str, int, int]:
    """(content type, width, height) of an image Pillow reads whole; GiveUp otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt, (width, height) = image.format, image.size
                image.verify()
    except Exception:
        raise GiveUp("not_an_image") from None
    content_type = CONTENT_TYPES.get(fmt or "")
    if content_type is None:
        raise GiveUp("not_an_image")
    return content_type, width, height
