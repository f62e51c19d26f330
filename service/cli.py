"""`outpaint-jobs` (also `python -m service`): serve, worker, migrate, simulator, keys."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

from service import logs
from service.api.auth import ADMIN, SCOPES
from service.app import (
    configuration_problem,
    create_app,
    output_store_problem,
    simulator_config,
)
from service.clock import utcnow
from service.domain.retention import parse_age, prune_cutoff
from service.domain.states import JobStatus
from service.edge import bounded
from service.provider.simulator import Simulator
from service.settings import Settings, load_settings
from service.store import Store
from service.store.migrate import MigrationsNotFound, current_revision, head_revision, upgrade
from service.store.objects import Objects
from service.workers import retention

log = logging.getLogger("service.cli")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return load_settings(**overrides)


async def _check_migrated(settings: Settings) -> str | None:
    store = Store.connect(settings.database_url)
    try:
        current = await current_revision(store.engine)
    finally:
        await store.close()
    head = head_revision(settings.database_url)
    if current != head:
        return (
            f"the database is at migration {current}, head is {head}: run `outpaint-jobs migrate`"
        )
    return None


async def _bootstrap_admin_key(settings: Settings) -> None:
    """On a database without keys, create an admin key and show it once: printed when
    stdout is a terminal (a person is there to read it), else written to ADMIN_KEY_FILE,
    readable by its owner only, and its path logged: never into a log, where a container's
    stdout ends up."""
    store = Store.connect(settings.database_url)
    try:
        if await store.clients.count_keys() != 0:
            return
        if sys.stdout.isatty():
            key, _secret = await store.clients.create_key("admin", [ADMIN], utcnow())
            print(
                "No API keys existed, so an admin key was created. It is shown only now:\n"
                f"  {key}\n{_MORE_KEYS}",
                flush=True,
            )
            return
        path = settings.admin_key_path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            log.warning(
                "No API keys exist, and the admin key could not be written to %s (%s), so "
                "none was created: create one with "
                "`outpaint-jobs keys create --name admin --scopes admin`",
                path,
                exc.strerror or type(exc).__name__,
            )
            return
        with os.fdopen(fd, "w") as file:
            os.fchmod(fd, 0o600)  # whatever the file was before
            key, _secret = await store.clients.create_key("admin", [ADMIN], utcnow())
            file.write(key + "\n")
        log.warning(
            "No API keys existed, so an admin key was created and written to %s (readable "
            "by its owner only). %s",
            path,
            _MORE_KEYS,
        )
    finally:
        await store.close()


_MORE_KEYS = (
    "Create client keys with: outpaint-jobs keys create --name NAME --scopes jobs:write,jobs:read"
)


def _tune_gc() -> None:
    """A long-running server allocates a few short-lived containers per request; with the
    default thresholds the cyclic collector ran often enough to take ~8 % of a webhook's
    CPU (py-spy --native, bench/ANALYSIS.md). Freeze what start-up made (never garbage) and
    collect the young generation less often; reference counting still frees almost all."""
    if os.environ.get("OUTPAINT_GC_DEFAULTS"):
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _run_app(settings: Settings, *, api: bool, run_workers: bool) -> int:
    """Serve one role under uvicorn, once the configuration holds together, the database
    is at the migrations' head and the output store keeps what is written to it."""
    import uvicorn

    problem = (
        configuration_problem(settings, api=api)
        or asyncio.run(_check_migrated(settings))
        or asyncio.run(output_store_problem(settings))
    )
    if problem:
        print(f"outpaint-jobs: {problem}", file=sys.stderr)
        return 2
    if api:
        asyncio.run(_bootstrap_admin_key(settings))
    app = create_app(settings, run_workers=run_workers, api=api)
    _tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.stop_grace_seconds) + 5,
        http=bounded(settings.edge_limits()),  # deadlines and budgets on receiving requests
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logs.configure(settings.log_format, settings.log_level)
    return _run_app(settings, api=True, run_workers=not args.no_workers)


def cmd_worker(args: argparse.Namespace) -> int:
    """The workers alone, with /healthz, /readyz and /metrics on HOST:PORT for probes."""
    settings = _settings(args)
    logs.configure(settings.log_format, settings.log_level)
    return _run_app(settings, api=False, run_workers=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logs.configure(settings.log_format, settings.log_level)
    upgrade(settings.database_url)
    print(f"migrated to {head_revision(settings.database_url)}")
    return 0


def cmd_simulator(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    logs.configure(settings.log_format, settings.log_level)
    host = args.host or "127.0.0.1"
    port = args.port or 8100
    key = settings.sim_api_key or "simulator"
    public_url = (args.public_url or f"http://{host}:{port}").rstrip("/")
    simulator = Simulator(simulator_config(settings, public_url, key))
    print(f"ModelsLab simulator: MODELSLAB_BASE_URL={public_url}/api/v6", flush=True)
    if not settings.sim_api_key:
        print("it answers the key 'simulator' (set SIM_API_KEY for another)", flush=True)
    uvicorn.run(simulator.app, host=host, port=port, log_config=None)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def run() -> int:
        store = Store.connect(settings.database_url)
        try:
            if args.keys_command == "create":
                scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
                unknown = sorted(set(scopes) - SCOPES)
                if not scopes or unknown:
                    print(
                        f"outpaint-jobs: unknown scopes {unknown}; choose from {sorted(SCOPES)}",
                        file=sys.stderr,
                    )
                    return 2
                key, secret = await store.clients.create_key(args.name, scopes, utcnow())
                if args.callback_url:
                    await store.clients.set_default_callback(args.name, args.callback_url)
                if secret:
                    print(secret)
                print(key)
            elif args.keys_command == "rotate-secret":
                grace = timedelta(hours=settings.callback_secret_grace_hours)
                new = await store.clients.rotate_secret(args.name, utcnow(), grace)
                if new is None:
                    print(f"outpaint-jobs: no client named {args.name}", file=sys.stderr)
                    return 1
                print(
                    f"the old secret keeps signing beside this one for {grace}",
                    file=sys.stderr,
                )
                print(new)
            elif args.keys_command == "set-callback":
                if not await store.clients.set_default_callback(args.name, args.url or None):
                    print(f"outpaint-jobs: no client named {args.name}", file=sys.stderr)
                    return 1
                print(f"default callback of {args.name}: {args.url or 'none'}")
            elif args.keys_command == "list":
                for k in await store.clients.list_keys():
                    state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
                    used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
                    print(f"{k.prefix}  {k.client_name:<20} {k.scopes:<30} {state:<24} used {used}")
            elif args.keys_command == "revoke":
                if not await store.clients.revoke_key(args.prefix, utcnow()):
                    print(
                        f"outpaint-jobs: no active key with prefix {args.prefix}", file=sys.stderr
                    )
                    return 1
                print(f"revoked {args.prefix}")
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


def _objects(settings: Settings) -> Objects | None:
    if not settings.archives_outputs:
        return None
    return Objects.from_setting(settings.output_store, settings.output_store_endpoint)


def cmd_prune(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        age = parse_age(args.older_than)
    except ValueError as exc:
        print(f"outpaint-jobs: --older-than: {exc}", file=sys.stderr)
        return 2

    async def run() -> int | None:
        store = Store.connect(settings.database_url)
        try:
            return await retention.prune(
                store, _objects(settings), prune_cutoff(utcnow(), age), args.batch_size
            )
        finally:
            await store.close()

    deleted = asyncio.run(run())
    if deleted is None:
        print("another process is pruning; nothing done")
        return 0
    print(f"deleted {deleted} finished jobs completed more than {args.older_than} ago")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from service import human

    settings = _settings(args)
    if args.jobs_command == "list":
        return human.jobs_list(settings, args.status, args.limit)
    if args.jobs_command == "show":
        return human.jobs_show(settings, args.job)
    return human.jobs_watch(settings, args.job, args.interval)


def cmd_submit(args: argparse.Namespace) -> int:
    from service import human

    settings = _settings(args)
    body: dict[str, object] = {"image": args.image, "prompt": args.prompt}
    for name in ("negative_prompt", "width", "height", "seed", "callback_url"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    api_url = args.api_url or os.environ.get("OUTPAINT_API_URL") or settings.base_url
    return human.submit(api_url, args.key, body, args.wait, args.timeout)


def cmd_outputs(args: argparse.Namespace) -> int:
    """`outputs verify`: read every stored object again and compare its SHA-256; `outputs
    migrate`: copy the outputs earlier output stores hold into the current one."""
    from service import outputs_admin

    settings = _settings(args)
    logs.configure(settings.log_format, settings.log_level)
    objects = _objects(settings)
    if objects is None:
        print("outpaint-jobs: OUTPUT_STORE is none: nothing is stored", file=sys.stderr)
        return 2

    async def run() -> outputs_admin.Report:
        store = Store.connect(settings.database_url)
        try:
            if args.outputs_command == "migrate":
                return await outputs_admin.migrate(store, objects)
            return await outputs_admin.verify(store, objects)
        finally:
            await store.close()

    report = asyncio.run(run())
    for line in report.problems:
        print(line)
    if args.outputs_command == "migrate":
        print(
            f"copied {report.checked} outputs into {objects.name}; "
            f"{len(report.problems)} left where they are (listed above)"
        )
    else:
        print(
            f"checked {report.checked} stored outputs: {len(report.problems)} missing or mismatched"
        )
    return 1 if report.problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outpaint-jobs", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="the API plus the background workers")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-workers", action="store_true", help="serve the API alone")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="the background workers alone (health on HOST:PORT)")
    worker.add_argument("--host")
    worker.add_argument("--port", type=int)
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="alembic upgrade head on DATABASE_URL")
    migrate.set_defaults(func=cmd_migrate)

    sim = sub.add_parser("simulator", help="the ModelsLab simulator alone")
    sim.add_argument("--host")
    sim.add_argument("--port", type=int)
    sim.add_argument(
        "--public-url",
        help="where clients reach it (its output and fetch URLs); default http://HOST:PORT",
    )
    sim.set_defaults(func=cmd_simulator)

    prune = sub.add_parser("prune", help="delete finished jobs (and their events)")
    prune.add_argument("--older-than", required=True, help="an age: 30d, 12h, 2w")
    prune.add_argument("--batch-size", type=int, default=1000)
    prune.set_defaults(func=cmd_prune)

    outputs = sub.add_parser("outputs", help="the output store")
    outputs_sub = outputs.add_subparsers(dest="outputs_command", required=True)
    outputs_sub.add_parser("verify", help="re-read every stored output, report mismatches")
    outputs_sub.add_parser(
        "migrate", help="copy outputs kept in earlier output stores into OUTPUT_STORE"
    )
    outputs.set_defaults(func=cmd_outputs)

    jobs = sub.add_parser("jobs", help="look at jobs (reads DATABASE_URL)")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="newest first")
    listing.add_argument("--status", choices=[s.value for s in JobStatus])
    listing.add_argument("--limit", type=int, default=20)
    show = jobs_sub.add_parser("show", help="a job and its events")
    show.add_argument("job", metavar="JOB_ID", help="public id or track id")
    watch = jobs_sub.add_parser("watch", help="live progress until the job ends")
    watch.add_argument("job", metavar="JOB_ID", help="public id or track id")
    watch.add_argument("--interval", type=float, default=0.5)
    jobs.set_defaults(func=cmd_jobs)

    submit = sub.add_parser("submit", help="create a job through the API (a quick manual test)")
    submit.add_argument("--image", required=True, help="image URL or base64")
    submit.add_argument("--prompt", default="high quality")
    submit.add_argument("--negative-prompt", dest="negative_prompt")
    submit.add_argument("--width", type=int)
    submit.add_argument("--height", type=int)
    submit.add_argument("--seed", type=int)
    submit.add_argument("--callback-url", dest="callback_url")
    submit.add_argument("--api-url", help="default: OUTPAINT_API_URL, else http://HOST:PORT")
    submit.add_argument("--key", help="default: OUTPAINT_API_KEY")
    submit.add_argument("--wait", action="store_true", help="follow the job's events until it ends")
    submit.add_argument("--timeout", type=float, default=3600)
    submit.set_defaults(func=cmd_submit)

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scopes", required=True, help="comma-separated: " + ",".join(sorted(SCOPES))
    )
    create.add_argument("--callback-url", help="the client's default callback URL")
    keys_sub.add_parser("list")
    rotate = keys_sub.add_parser("rotate-secret", help="a new callback signing secret")
    rotate.add_argument("name", metavar="NAME")
    set_cb = keys_sub.add_parser("set-callback", help="a client's default callback URL")
    set_cb.add_argument("name", metavar="NAME")
    set_cb.add_argument("url", metavar="URL", nargs="?", default="", help="omit to clear")
    revoke = keys_sub.add_parser("revoke")
    revoke.add_argument("prefix", metavar="KEY_PREFIX")
    keys.set_defaults(func=cmd_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MigrationsNotFound as exc:
        print(f"outpaint-jobs: {exc}", file=sys.stderr)
        return 2
