"""Shared fixtures. Every database test runs on SQLite, and on PostgreSQL too when
TEST_DATABASE_URL is set; each run gets its own fresh database, created and dropped here.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from service.api.context import ApiContext
from service.app import create_app
from service.settings import Settings
from service.store import Store
from service.store.migrate import upgrade
from tests import loopback_guard
from tests.factories import empty_every_table
from tests.live import LiveServer

pytest_plugins = ("tests.s3",)  # the loopback S3 server's fixtures

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


async def _pg_admin(sql: str) -> None:
    import asyncpg

    assert PG_URL is not None
    url = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
def _stays_on_loopback() -> Iterator[None]:
    """Fails any test during which a process of the suite tried to reach anything but
    loopback (tests/loopback/sitecustomize.py refused it)."""
    before = len(loopback_guard.refusals())
    yield
    new = loopback_guard.refusals()[before:]
    assert not new, f"a test process tried to leave the machine: {new}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgresql` need several processes on one PostgreSQL database; with no
    TEST_DATABASE_URL they are deselected (reported), and CI always sets it."""

    def sqlite_only(item: pytest.Item) -> bool:
        callspec = getattr(item, "callspec", None)
        return not PG_URL or (
            callspec is not None and callspec.params.get("migrated_db") == "sqlite"
        )

    marked = [i for i in items if i.get_closest_marker("postgresql") is not None]
    dropped = [i for i in marked if sqlite_only(i)]
    keep = [i for i in items if i not in dropped]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database of one backend, migrated to head, for the whole run."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        yield url
        return
    assert PG_URL is not None
    name = f"outpaint_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))  # fails loudly if unreachable
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database with no tables at all (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    assert PG_URL is not None
    name = f"outpaint_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db_url(migrated_db: str) -> str:
    """The run's database, emptied before this test."""
    store = Store.connect(migrated_db)
    await empty_every_table(store)
    await store.close()
    return migrated_db


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = Store.connect(db_url)
    yield s
    await s.close()


def make_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "modelslab_api_key": None,
        "webhook_secret": "test-webhook-secret",
        "log_format": "console",
        "output_store": "none",  # archiving is tested where it is asked for
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Api:
    client: httpx.AsyncClient
    store: Store
    settings: Settings
    ctx: ApiContext | None = None  # the app's, for a test that injects a clock

    async def key(
        self, client: str = "team-a", scopes: str = "jobs:write,jobs:read"
    ) -> dict[str, str]:
        raw, _secret = await self.store.clients.create_key(client, scopes.split(","), now())
        return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    """The app over ASGI, without background workers: requests only."""
    settings = make_settings(db_url)
    app = create_app(settings, run_workers=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app.state.ctx.store, settings, app.state.ctx)


@pytest.fixture
async def live() -> AsyncIterator[LiveServer]:
    server = LiveServer()
    yield server
    await server.stop()
