"""A ModelsLab simulator: outpaint, fetch and webhooks over real HTTP, with settable faults.

Mounted in-process under /simulator when MODELSLAB_API_KEY is unset, or run alone with
`outpaint-jobs simulator`. It keeps its generations in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.provider.images import MAX_INPUT_BYTES, decode_base64_image, outpaint_png

log = logging.getLogger("service.simulator")

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


@dataclass
class Generation:
    id: int
    request: dict[str, Any]
    ready_at: float
    fails: bool
    webhook: str | None
    track_id: Any
    outputs: list[str] = field(default_factory=list)


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.base = config.public_url.rstrip("/")
        self._rng = random.Random(config.seed)
        self._ids = itertools.count(self._rng.randint(1000, 9000))
        self._generations: dict[int, Generation] = {}
        self._images: OrderedDict[int, bytes] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.submits: Counter[str] = Counter()  # track_id -> outpaint calls
        self.accepted: Counter[str] = Counter()  # track_id -> generations started
        self.outcomes: dict[str, str] = {}  # track_id -> "success" | "failed" (the last)
        self.fetches: Counter[int] = Counter()  # generation id -> fetch calls
        self.webhooks_sent: Counter[int] = Counter()
        self.peak_unfinished = 0
        self.fetch_overlaps = 0  # fetches of one generation that overlapped another
        self.errors_sent = 0  # 5xx answers given (SIM_ERROR_RATE)
        self._fetching: Counter[int] = Counter()
        self.app = Starlette(
            routes=[
                Route("/api/v6/image_editing/outpaint", self.outpaint, methods=["POST"]),
                Route("/api/v6/image_editing/fetch/{id:int}", self.fetch, methods=["POST"]),
                Route("/outputs/{id:int}.png", self.output, methods=["GET"]),
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
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return _error(400, "Invalid JSON body")
        if not body.get("key"):
            return _error(401, "Invalid API key")
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
        self.peak_unfinished = max(self.peak_unfinished, unfinished + 1)
        gen = Generation(
            id=next(self._ids),
            request={k: v for k, v in body.items() if k != "key"},
            ready_at=time.monotonic() + self.config.eta_seconds,
            fails=self._rng.random() < self.config.failure_rate,
            webhook=body.get("webhook") or None,
            track_id=body.get("track_id"),
        )
        gen.outputs = [f"{self.base}/outputs/{gen.id}.png"]
        self._generations[gen.id] = gen
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
                "meta": {"width": gen.request.get("width"), "height": gen.request.get("height")},
                "track_id": gen.track_id,
            }
        )

    async def fetch(self, request: Request) -> Response:
        if self._rng.random() < self.config.error_rate:
            self.errors_sent += 1
            return _error(self._rng.choice((500, 503)), "Server is busy, try again")
        gen = self._generations.get(request.path_params["id"])
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
        gen = self._generations.get(request.path_params["id"])
        if gen is None or gen.fails or time.monotonic() < gen.ready_at:
            return Response(status_code=404)
        png = self._images.get(gen.id)
        if png is None:
            source = await self._input_bytes(gen.request.get("image", ""))
            png = await asyncio.to_thread(
                outpaint_png,
                source,
                int(gen.request.get("width") or DEFAULTS["width"]),
                int(gen.request.get("height") or DEFAULTS["height"]),
                int(gen.request.get("overlap_width") or DEFAULTS["overlap_width"]),
                gen.id,
            )
            self._images[gen.id] = png
            while len(self._images) > 64:
                self._images.popitem(last=False)
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
            "meta": {"width": gen.request.get("width"), "height": gen.request.get("height")},
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
        for payload in payloads:
            assert gen.webhook is not None
            try:
                await self._client().post(gen.webhook, json=payload)
                self.webhooks_sent[gen.id] += 1
            except httpx.HTTPError as exc:
                log.warning("simulator webhook to %s failed: %s", gen.id, type(exc).__name__)

    async def _input_bytes(self, image: str) -> bytes | None:
        if image.startswith(("http://", "https://")):
            try:
                response = await self._client().get(image, timeout=5.0)
            except httpx.HTTPError:
                return None
            if response.status_code != 200 or len(response.content) > MAX_INPUT_BYTES:
                return None
            return response.content
        return decode_base64_image(image)


def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("image"), str) or not body["image"]:
        return "The image field is required."
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
