"""A ModelsLab simulator: outpaint, fetch and webhooks over real HTTP, with settable faults.

Mounted in-process under /simulator when MODELSLAB_API_KEY is unset, or run alone with
`outpaint-jobs simulator`. It keeps a bounded number of generations in memory. It is not
an open proxy: it answers only its own key, and it fetches images and sends webhooks only
through the same address guard as client callbacks (`service.netguard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import re
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.domain import jsonsafe
from service.netguard import Unresolvable, UnsafeCallback, guarded_client
from service.provider.images import (
    MAX_INPUT_BYTES,
    decode_base64_image,
    inspect_image,
    outpaint_png,
    sample_png,
)

log = logging.getLogger("service.simulator")
K = TypeVar("K")
V = TypeVar("V")

LIMITS = {"width": 1440, "height": 1440, "overlap_width": 42, "num_inference_steps": 30}
DEFAULTS = {"width": 1280, "height": 720, "overlap_width": 10, "num_inference_steps": 10}


@dataclass(frozen=True)
class SimulatorConfig:
    public_url: str  # where clients reach the simulator (outputs, fetch_result)
    eta_seconds: float = 3.0
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_delay_seconds: float = 0.0
    failure_rate: float = 0.0
    webhook_reorder_rate: float = 0.0  # a stale `processing` webhook after the final one
    queue_limit: int = 0  # > 0: answer 429 beyond this many unfinished generations
    error_rate: float = 0.0  # share of outpaint and fetch calls answered 500/503
    fetch_delay_seconds: float = 0.0  # slow fetches
    seed: int | None = None
    api_key: str = "simulator"  # the only key it answers
    allow_private_urls: bool = False  # fetch images from / send webhooks to private addresses
    # The service that mounts it: webhooks to its own webhook route are always sent.
    trusted_webhook_base: str | None = None
    max_body_bytes: int = 1024 * 1024
    max_generations: int = 10_000
    max_input_bytes_held: int = 64 * 1024 * 1024  # inputs kept for rendering outputs


@dataclass
class Generation:
    id: int
    width: int
    height: int
    overlap: int
    ready_at: float
    fails: bool
    webhook: str | None
    track_id: Any
    outputs: list[str] = field(default_factory=list)


class Tally(Counter[K]):
    """A Counter that forgets its oldest keys past `limit` (instrumentation stays bounded
    whatever track ids a caller makes up)."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: int) -> None:
        super().__setitem__(key, value)
        while len(self) > self.limit:
            del self[next(iter(self))]


class Bounded(dict[K, V]):
    """A dict that forgets its oldest keys past `limit`."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        self.pop(key, None)  # a key set again counts as new
        super().__setitem__(key, value)
        while len(self) > self.limit:
            del self[next(iter(self))]


class _TooLarge(Exception):
    pass


# The mounting service's webhook route: `{base}/webhooks/modelslab/{token}`, nothing else.
_WEBHOOK_PATH = re.compile(r"/webhooks/modelslab/[A-Za-z0-9_-]{1,20}\.[A-Za-z0-9_-]{1,64}")


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.base = config.public_url.rstrip("/")
        self._rng = random.Random(config.seed)
        self._generations: OrderedDict[int, Generation] = OrderedDict()
        self._inputs: OrderedDict[int, bytes] = OrderedDict()
        self._input_bytes = 0
        self._images: OrderedDict[int, bytes] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.submits: Tally[str] = Tally()  # track_id -> outpaint calls
        self.accepted: Tally[str] = Tally()  # track_id -> generations started
        self.outcomes: Bounded[str, str] = Bounded()  # track_id -> "success" | "failed"
        self.fetches: Tally[int] = Tally()  # generation id -> fetch calls
        self.webhooks_sent: Tally[int] = Tally()
        self.webhooks_refused = 0  # webhook URLs the address guard refused
        self.peak_unfinished = 0
        self.fetch_overlaps = 0  # fetches of one generation that overlapped another
        self.errors_sent = 0  # 5xx answers given (SIM_ERROR_RATE)
        self._fetching: Counter[int] = Counter()
        self.app = Starlette(
            routes=[
                Route("/api/v6/image_editing/outpaint", self.outpaint, methods=["POST"]),
                Route("/api/v6/image_editing/fetch/{id}", self.fetch, methods=["POST"]),
                Route("/outputs/{id}.png", self.output, methods=["GET"]),
                Route("/samples/{name}.png", self.sample, methods=["GET"]),
                Route("/_sim/log", self.log, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=30.0)
        return self._http

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- routes ---------------------------------------------------------------------------

    async def outpaint(self, request: Request) -> Response:
        body, refusal = await self._read(request)
        if refusal is not None:
            return refusal
        problem = _validate(body)
        if problem:
            return _error(400, problem)
        self.submits[str(body.get("track_id"))] += 1
        if self._rng.random() < self.config.error_rate:
            self.errors_sent += 1
            return _error(self._rng.choice((500, 503)), "Server is busy, try again")
        unfinished = self._unfinished()
        if self.config.queue_limit and unfinished >= self.config.queue_limit:
            limit = self.config.queue_limit
            return JSONResponse(
                {
                    "status": "error",
                    "message": f"Rate limit exceeded. Maximum {limit} queued requests allowed.",
                    "retry_after": max(round(self.config.eta_seconds, 2), 0.1),
                },
                status_code=429,
            )
        source, refused = await self._input(body["image"])
        if refused is not None:
            return _error(400, refused)
        self.peak_unfinished = max(self.peak_unfinished, unfinished + 1)
        webhook = body.get("webhook")
        gen = Generation(
            id=self._new_id(),
            width=int(body.get("width") or DEFAULTS["width"]),
            height=int(body.get("height") or DEFAULTS["height"]),
            overlap=int(body.get("overlap_width") or DEFAULTS["overlap_width"]),
            ready_at=time.monotonic() + self.config.eta_seconds,
            fails=self._rng.random() < self.config.failure_rate,
            webhook=webhook if isinstance(webhook, str) and webhook else None,
            track_id=body.get("track_id"),
        )
        gen.outputs = [f"{self.base}/outputs/{gen.id}.png"]
        self._keep(gen, source)
        self.accepted[str(gen.track_id)] += 1
        self.outcomes[str(gen.track_id)] = "failed" if gen.fails else "success"
        if gen.webhook:
            self._spawn(self._deliver(gen))
        return JSONResponse(
            {
                "status": "processing",
                "tip": "Your image is processing in background",
                "eta": round(self.config.eta_seconds, 2),
                "message": "Try to fetch request after given estimated time",
                "fetch_result": f"{self.base}/api/v6/image_editing/fetch/{gen.id}",
                "id": gen.id,
                "output": [],
                "future_links": gen.outputs,
                "proxy_links": gen.outputs,
                "meta": {"width": gen.width, "height": gen.height},
                "track_id": gen.track_id,
            }
        )

    async def fetch(self, request: Request) -> Response:
        _body, refusal = await self._read(request)
        if refusal is not None:
            return refusal
        if self._rng.random() < self.config.error_rate:
            self.errors_sent += 1
            return _error(self._rng.choice((500, 503)), "Server is busy, try again")
        gen = self._generation(request.path_params["id"])
        if gen is None:
            return JSONResponse({"status": "failed", "id": "", "message": "Request not found"})
        self.fetches[gen.id] += 1
        self._fetching[gen.id] += 1
        if self._fetching[gen.id] > 1:
            self.fetch_overlaps += 1
        try:
            if self.config.fetch_delay_seconds:
                await asyncio.sleep(self.config.fetch_delay_seconds)
        finally:
            self._fetching[gen.id] -= 1
            if not self._fetching[gen.id]:
                del self._fetching[gen.id]
        remaining = gen.ready_at - time.monotonic()
        if remaining > 0:
            return JSONResponse(
                {
                    "status": "processing",
                    "eta": round(remaining, 2),
                    "id": gen.id,
                    "output": "",
                    "messege": "Request is still processing",
                }
            )
        return JSONResponse(self._final(gen, for_webhook=False))

    async def output(self, request: Request) -> Response:
        gen = self._generation(request.path_params["id"])
        if gen is None or gen.fails or time.monotonic() < gen.ready_at:
            return Response(status_code=404)
        png = self._images.get(gen.id)
        if png is None:
            png = await asyncio.to_thread(
                outpaint_png,
                self._inputs.get(gen.id),
                gen.width,
                gen.height,
                gen.overlap,
                gen.id,
            )
            self._images[gen.id] = png
            while len(self._images) > 64:
                self._images.popitem(last=False)
        return Response(png, media_type="image/png")

    async def sample(self, request: Request) -> Response:
        """A sample input to outpaint (`room`, `lake`): no network needed to try a job."""
        png = sample_png(request.path_params["name"])
        if png is None:
            return Response(status_code=404)
        return Response(png, media_type="image/png")

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def log(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "submits": dict(self.submits),
                "accepted": dict(self.accepted),
                "outcomes": self.outcomes,
                "peak_unfinished": self.peak_unfinished,
                "fetch_overlaps": self.fetch_overlaps,
                "fetches": {str(k): v for k, v in self.fetches.items()},
                "webhooks_sent": {str(k): v for k, v in self.webhooks_sent.items()},
            }
        )

    # --- behaviour ------------------------------------------------------------------------

    def _unfinished(self) -> int:
        now = time.monotonic()
        return sum(1 for g in self._generations.values() if g.ready_at > now)

    def _new_id(self) -> int:
        """An unguessable id (53 random bits: exact in every JSON reader), never reused."""
        while True:
            candidate = secrets.randbits(53) | (1 << 52)
            if candidate not in self._generations:
                return candidate

    def _generation(self, raw_id: str) -> Generation | None:
        return (
            self._generations.get(int(raw_id))
            if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18
            else None
        )

    def _keep(self, gen: Generation, source: bytes | None) -> None:
        """Remember a generation (the oldest go past `max_generations`) and its input (the
        oldest go past `max_input_bytes_held`; their outputs fall back to a placeholder)."""
        self._generations[gen.id] = gen
        while len(self._generations) > self.config.max_generations:
            old_id, _ = self._generations.popitem(last=False)
            self._forget_input(old_id)
            self._images.pop(old_id, None)
        if source:
            self._inputs[gen.id] = source
            self._input_bytes += len(source)
            while self._input_bytes > self.config.max_input_bytes_held and self._inputs:
                self._forget_input(next(iter(self._inputs)))

    def _forget_input(self, gen_id: int) -> None:
        data = self._inputs.pop(gen_id, None)
        if data is not None:
            self._input_bytes -= len(data)

    async def _read(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        """The JSON body, bounded and strict, with the right key; or the refusal."""
        try:
            raw = await self._bounded_body(request)
        except _TooLarge:
            return {}, _error(413, "Request body too large")
        try:
            body = jsonsafe.loads(raw)
        except ValueError:
            return {}, _error(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return {}, _error(400, "Invalid JSON body")
        key = body.get("key")
        if not isinstance(key, str) or not hmac.compare_digest(
            key.encode(), self.config.api_key.encode()
        ):
            return {}, _error(401, "Invalid API key")
        return body, None

    async def _bounded_body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if (
            declared.isascii()
            and declared.isdigit()
            and (len(declared) > 18 or int(declared) > limit)
        ):
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def _input(self, image: str) -> tuple[bytes | None, str | None]:
        """(the input's bytes or None when it cannot be read: a placeholder is outpainted,
        a refusal message): an image URL must pass the address guard, and no image may
        be a decompression bomb or over 1440 px on a side."""
        own = f"{self.base}/samples/"
        if image.startswith(own) and image.endswith(".png"):  # ours: read, not fetched
            source = sample_png(image.removeprefix(own).removesuffix(".png"))
        elif image.startswith(("http://", "https://")):
            try:
                source = await self._fetch_image(image)
            except Unresolvable:
                source = None
            except UnsafeCallback as exc:
                return None, f"The image URL may not be fetched: {exc}"
        else:
            source = decode_base64_image(image)
        if source is not None:
            refused = inspect_image(source)
            if refused is not None:
                return None, refused
        return source, None

    async def _fetch_image(self, url: str) -> bytes | None:
        http = await guarded_client(url, self.config.allow_private_urls, 5.0)
        try:
            async with http, http.stream("GET", url) as response:
                if response.status_code != 200:
                    return None
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_INPUT_BYTES:
                        return None
                return bytes(data)
        except httpx.HTTPError:
            return None

    def _final(self, gen: Generation, for_webhook: bool) -> dict[str, Any]:
        if gen.fails:
            return {
                "status": "failed" if for_webhook else "error",
                "id": gen.id,
                "message": "Simulated generation failure",
                "track_id": gen.track_id,
            }
        return {
            "status": "success",
            "id": gen.id,
            "output": gen.outputs,
            "proxy_links": gen.outputs,
            "generationTime": round(self.config.eta_seconds, 2),
            "meta": {"width": gen.width, "height": gen.height},
            "track_id": gen.track_id,
        }

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, gen: Generation) -> None:
        await asyncio.sleep(
            max(gen.ready_at - time.monotonic(), 0) + self.config.webhook_delay_seconds
        )
        if self._rng.random() < self.config.webhook_drop_rate:
            log.info("simulator dropped the webhook of generation %s", gen.id)
            return
        payloads = [self._final(gen, for_webhook=True)]
        if self._rng.random() < self.config.webhook_duplicate_rate:
            payloads.append(payloads[0])
        if self._rng.random() < self.config.webhook_reorder_rate:
            stale = {"status": "processing", "id": gen.id, "eta": 1, "track_id": gen.track_id}
            payloads.append(stale)  # an earlier notice, delivered after the final one
        assert gen.webhook is not None
        for payload in payloads:
            try:
                await self._post_webhook(gen.webhook, payload)
                self.webhooks_sent[gen.id] += 1
            except UnsafeCallback as exc:
                self.webhooks_refused += 1
                log.warning("simulator refused the webhook of generation %s: %s", gen.id, exc)
                return
            except httpx.HTTPError as exc:
                log.warning("simulator webhook to %s failed: %s", gen.id, type(exc).__name__)

    async def _post_webhook(self, url: str, payload: dict[str, Any]) -> None:
        """To the mounting service's own webhook route directly; anywhere else only through
        the address guard (which refuses private addresses unless they are allowed)."""
        if self._is_trusted_webhook(url):
            await self._client().post(url, json=payload)
            return
        http = await guarded_client(url, self.config.allow_private_urls, 30.0)
        async with http:
            await http.post(url, json=payload)

    def _is_trusted_webhook(self, url: str) -> bool:
        if not self.config.trusted_webhook_base:
            return False
        try:
            ours, theirs = httpx.URL(self.config.trusted_webhook_base), httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            return False
        if (theirs.scheme, theirs.host, theirs.port) != (ours.scheme, ours.host, ours.port):
            return False
        if theirs.query or theirs.fragment or theirs.userinfo:
            return False
        base_path = ours.path.rstrip("/")
        path = theirs.path
        return path.startswith(base_path) and bool(_WEBHOOK_PATH.fullmatch(path[len(base_path) :]))


def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("image"), str) or not body["image"]:
        return "The image field is required."
    webhook = body.get("webhook")
    if webhook is not None and not isinstance(webhook, str):
        return "The webhook must be a URL."
    for name, maximum in LIMITS.items():
        if name not in body or body[name] is None:
            continue
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, int):
            return f"The {name} must be an integer."
        if value > maximum:
            return f"The {name} may not be greater than {maximum}."
        if value < 1 and name != "overlap_width":
            return f"The {name} must be at least 1."
    track_id = body.get("track_id")
    if track_id is not None and (isinstance(track_id, bool) or not isinstance(track_id, int)):
        return "The track_id must be an integer."
    return None


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message}, status_code=status_code)
