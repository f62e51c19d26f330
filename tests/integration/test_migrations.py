"""The migrations run on SQLite and PostgreSQL, go down and up again, and create exactly
the tables the code declares."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.util.exc import CommandError

from service.store.engine import make_engine
from service.store.migrate import alembic_config, current_revision, head_revision, upgrade


def revision_of(url: str) -> str | None:
    async def read() -> str | None:
        engine = make_engine(url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_upgrade_downgrade_upgrade(empty_db: str) -> None:
    assert revision_of(empty_db) is None
    upgrade(empty_db)
    assert revision_of(empty_db) == head_revision(empty_db)
    command.downgrade(alembic_config(empty_db), "base")
    assert revision_of(empty_db) is None
    upgrade(empty_db)
    assert revision_of(empty_db) == head_revision(empty_db)


def test_migrations_match_the_tables_in_code(empty_db: str) -> None:
    upgrade(empty_db)
    try:
        command.check(alembic_config(empty_db))
    except CommandError as exc:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"models and migrations differ: {exc}") from None
