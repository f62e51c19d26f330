"""The contract's reference: a fresh SQLite store, migrated once per session and copied per
test, that every backend under test must match."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.store import Store
from service.store.migrate import upgrade


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def reference(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite store, migrated: the reference every backend must match."""
    path = tmp_path / "reference.db"
    shutil.copy(sqlite_template, path)
    s = Store.connect(f"sqlite+aiosqlite:///{path}")
    yield s
    await s.close()
