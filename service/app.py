"""The app factory: routes, error handlers, and the lifespan that owns the engine, the
provider client, the simulator (when MODELSLAB_API_KEY is unset) and the workers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from service import logs
from service.api import (
    actions,
    dashboard,
    docs,
    events,
    health,
    jobs,
    links,
    me,
    metrics,
    openapi,
    outputs,
    problem_types,
    series,
    stats,
    webhooks,
)
from service.api.context import ApiContext
from service.api.middleware import RequestId, cors
from service.api.problems import EXCEPTION_HANDLERS
from service.outputs_admin import warn_if_elsewhere
from service.provider.client import ModelsLabClient
from service.provider.simulator import Simulator, SimulatorConfig
from service.runtime.services import Runtime
from service.runtime.watchers import Watchers
from service.settings import SIMULATOR_MOUNT, Settings
from service.store import Store
from service.store.objects import Objects, StoreHealth, StoreUnusable
from service.workers.runner import Workers
from service.workers.series import SeriesFlusher

log = logging.getLogger("service.app")


def simulator_config(
    settings: Settings, public_url: str, api_key: str, trusted_webhook_base: str | None = None
) -> SimulatorConfig:
    return settings.taken(
        SimulatorConfig,
        "sim_",
        public_url=public_url,
        api_key=api_key,
        trusted_webhook_base=trusted_webhook_base,
        max_body_bytes=settings.max_body_bytes,
    )


def configuration_problem(settings: Settings, *, api: bool = True) -> str | None:
    """Why this configuration would run but not work, or None. Checked when a role starts
    (`serve`, `worker`, the uvicorn factory), so a mistake stops the process at once with
    a reason instead of failing every job later."""
    if not settings.uses_simulator and not settings.public_base_url:
        return (
            "MODELSLAB_API_KEY is set but PUBLIC_BASE_URL is not: ModelsLab would be sent "
            f"{settings.base_url} as this service's webhook address, which it cannot reach. "
            "Set PUBLIC_BASE_URL to the address under which ModelsLab reaches the API."
        )
    if settings.uses_simulator and not api:
        return (
            "the worker role has no simulator of its own and needs a provider: set "
            "MODELSLAB_API_KEY and MODELSLAB_BASE_URL (to ModelsLab, or to a standalone "
            "`outpaint-jobs simulator`) and PUBLIC_BASE_URL."
        )
    if settings.uses_simulator and multiprocessing.parent_process() is not None:
        return (
            "the built-in simulator keeps its generations in this process's memory, so it "
            "cannot serve several worker processes (uvicorn --workers N): run "
            "`outpaint-jobs simulator` once and point MODELSLAB_BASE_URL and "
            "MODELSLAB_API_KEY at it, or run one process."
        )
    return None


STORE_CHECK_SECONDS = 15.0  # obstore retries a refused connection for a while


async def output_store_problem(settings: Settings) -> str | None:
    """Why OUTPUT_STORE cannot keep outputs (a small object written, read back, deleted),
    or None. Checked when `serve` and `worker` start, so a store that refuses writes stops
    the process with its name instead of holding every archive (and callback) later."""
    if not settings.archives_outputs:
        return None
    try:
        objects = Objects.from_setting(settings.output_store, settings.output_store_endpoint)
        if objects is None:
            return None
        async with asyncio.timeout(STORE_CHECK_SECONDS):
            await objects.check()
    except StoreUnusable as exc:
        reason = str(exc)
    except TimeoutError:
        reason = f"{settings.output_store}: no answer in {STORE_CHECK_SECONDS:g} s"
    except OSError as exc:  # a directory that cannot be made
        reason = f"{settings.output_store}: {exc}"
    else:
        return None
    return (
        f"the output store cannot keep outputs ({reason}). Fix OUTPUT_STORE (and for S3 "
        "OUTPUT_STORE_ENDPOINT and the AWS_* variables), or set OUTPUT_STORE=none to keep "
        "no copies."
    )


def create_app(settings: Settings, *, run_workers: bool = True, api: bool = True) -> Starlette:
    """The service. `api=False` is the worker role: the background workers with only the
    health and metrics routes (for probes and scrapes), and no simulator of its own."""
    logs.install_redaction()
    logs.register_secret(settings.modelslab_api_key)
    logs.register_secret(settings.webhook_secret)
    logs.register_secret(settings.metrics_token)
    simulator = (
        Simulator(
            simulator_config(
                settings,
                settings.base_url + SIMULATOR_MOUNT,
                settings.simulator_key,
                trusted_webhook_base=settings.base_url,
            )
        )
        if settings.uses_simulator and api
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = Store.connect(
            settings.database_url,
            settings.archive_policy() if settings.archives_outputs else None,
        )
        provider = ModelsLabClient(
            settings.provider_base_url,
            settings.provider_key,
            settings.provider_timeout_seconds,
            circuit=settings.circuit(),
        )
        objects = (
            Objects.from_setting(settings.output_store, settings.output_store_endpoint)
            if settings.archives_outputs
            else None
        )
        if objects is not None:
            await warn_if_elsewhere(store, objects)
        runtime = Runtime(
            settings=settings,
            store=store,
            provider=provider,
            webhook_secret=await store.clients.webhook_secret(settings.webhook_secret),
            objects=objects,
        )
        logs.register_secret(runtime.webhook_secret)
        logs.register_secret(settings.provider_key)
        workers = Workers(runtime) if run_workers else None
        watchers = Watchers(
            store,
            runtime.clock,
            max_waiters=settings.max_waiters,
            max_waiters_per_client=settings.max_waiters_per_client,
            database_url=None if settings.is_sqlite else settings.database_url,
        )
        app.state.ctx = ApiContext(
            settings=settings,
            store=store,
            runtime=runtime,
            workers=workers,
            watchers=watchers,
            output_store=StoreHealth(objects) if objects is not None else None,
        )
        if simulator is not None:
            log.info(
                "MODELSLAB_API_KEY is unset: using the built-in simulator at %s",
                settings.provider_base_url,
            )
        flusher = SeriesFlusher(
            store, runtime.clock, settings.series_flush_seconds, archive=objects is not None
        )
        flusher.start()
        if api:
            watchers.start()
        if workers is not None:
            await workers.start()
        try:
            yield
        finally:
            await watchers.stop()
            if workers is not None:
                await workers.stop()
            await flusher.stop()  # after the workers: their last counts go too
            if simulator is not None:
                await simulator.aclose()
            await provider.aclose()
            await store.close()

    routes: list[BaseRoute] = [*health.routes, *metrics.routes]
    if api:
        routes += [
            *jobs.routes,
            *events.routes,
            *links.routes,
            *outputs.routes,
            *actions.routes,
            *stats.routes,
            *series.routes,
            *me.routes,
            *problem_types.routes,
            *webhooks.routes,
            *openapi.routes,
            *docs.routes,
            *dashboard.routes,
        ]
    if simulator is not None:
        routes.append(Mount(SIMULATOR_MOUNT, app=simulator.app))
    middleware = [Middleware(RequestId)]
    if settings.cors_origins and api:  # outermost: its headers go on every answer, 500s too
        middleware.insert(0, cors(settings.cors_origins))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.simulator = simulator
    return app


def app_from_env() -> Starlette:
    """For `uvicorn service.app:app_from_env --factory [--workers N]`: the settings from the
    environment. With several workers, set PROMETHEUS_MULTIPROC_DIR (README, Metrics)."""
    from service.settings import load_settings

    settings = load_settings()
    logs.configure(settings.log_format, settings.log_level)
    problem = configuration_problem(settings) or _in_a_thread(output_store_problem(settings))
    if problem:
        raise SystemExit(f"outpaint-jobs: {problem}")
    return create_app(settings)


def _in_a_thread(coroutine: Coroutine[Any, Any, str | None]) -> str | None:
    """Run `coroutine` to its end from synchronous code that may itself be running inside
    an event loop (uvicorn calls a factory from its own loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
