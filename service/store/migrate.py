"""Run Alembic from code (`outpaint-jobs migrate`, tests, readiness)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine


def root() -> Path:
    """Where alembic.ini lives: OUTPAINT_ROOT, the source tree, or the working directory
    (an installed wheel in a container runs from a directory holding `migrations/`).
    Looked up when a migration command needs it, never at import: every other
    subcommand of an installed wheel works from any directory."""
    candidates = [Path(__file__).resolve().parents[2], Path.cwd()]
    if os.environ.get("OUTPAINT_ROOT"):
        candidates.insert(0, Path(os.environ["OUTPAINT_ROOT"]))
    for path in candidates:
        if (path / "alembic.ini").is_file():
            return path
    raise MigrationsNotFound(
        "alembic.ini and migrations/ were not found in "
        + ", ".join(str(c) for c in candidates)
        + ": run from the directory that holds them, or set OUTPAINT_ROOT to it"
    )


class MigrationsNotFound(FileNotFoundError):
    """No alembic.ini (with its migrations/) where we looked."""


def alembic_config(url: str) -> Config:
    base = root()
    cfg = Config(str(base / "alembic.ini"))
    cfg.set_main_option("script_location", str(base / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking; runs its own event loop, so call it from a thread when inside one."""
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )
