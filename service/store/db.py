"""The database handle every part of the store shares: short write transactions (on SQLite
through one writer connection, queued in-process), reads on their own connections, and the
raw asyncpg connection for statements run verbatim on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.store.engine import make_engine, make_sqlite_writer

if TYPE_CHECKING:
    import asyncpg


class Database:
    def __init__(self, engine: AsyncEngine, writer: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.is_postgresql = engine.dialect.name == "postgresql"
        # SQLite has one writer: every write transaction of this process goes through one
        # connection, one at a time, queued here (FIFO) rather than in SQLite's busy handler.
        self._writer = writer or engine
        self._write_lock = asyncio.Lock() if not self.is_postgresql else None

    @classmethod
    def connect(cls, database_url: str) -> Database:
        engine = make_engine(database_url)
        if engine.dialect.name == "sqlite":
            return cls(engine, make_sqlite_writer(database_url))
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._writer is not self.engine:
            await self._writer.dispose()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed on success, rolled back on an exception."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self._writer.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def driver(self) -> AsyncIterator[asyncpg.Connection[Any]]:
        """PostgreSQL: a pooled asyncpg connection itself, for named statements run
        verbatim as prepared statements (no SQLAlchemy layer on the hot paths). Outside a
        transaction each statement commits on its own."""
        assert self.is_postgresql
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            yield driver
