"""Liveness and readiness."""

from tests.conftest import Api


async def test_healthz_and_readyz(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    r = await api.client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok", "writes": "ok"}


async def test_readyz_says_when_migrations_are_behind(api: Api) -> None:
    from sqlalchemy import text

    from service.store.migrate import head_revision

    head = head_revision(api.settings.database_url)
    async with api.store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    try:
        r = await api.client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["migrations"].startswith("behind")
    finally:
        async with api.store.engine.begin() as conn:
            await conn.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )


async def test_readyz_says_when_the_database_is_unreachable(api: Api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from service.store.engine import make_engine

    working = api.store.db.engine
    api.store.db.engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    try:
        r = await api.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["database"].startswith("unreachable")
        assert (await api.client.get("/healthz")).status_code == 200  # alive, just not ready
    finally:
        await api.store.engine.dispose()
        api.store.db.engine = working
