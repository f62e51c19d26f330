"""The store: the database behind the service, split by area. `Store.jobs` creates, reads
and claims jobs; `Store.changes` applies the domain's changes to them; `Store.callbacks`
keeps the callback outbox; `Store.clients` clients and keys; `Store.stats` what ops read;
`Store.watching` what waiters on jobs need; `Store.archives` the output archive; `Store.series` the per-minute series."""

from __future__ import annotations

import os

from sqlalchemy.ext.asyncio import AsyncEngine

from service.domain.archive import ArchivePolicy
from service.store import postgres, sqlite
from service.store.archives import ArchiveStore
from service.store.backend import Backend
from service.store.callbacks import CallbackStore
from service.store.changes import ChangeStore
from service.store.clients import ClientStore
from service.store.db import Database
from service.store.jobs import JobStore
from service.store.series import SeriesStore
from service.store.stats import StatsStore
from service.store.watching import WatchStore


class Store:
    def __init__(self, db: Database, archive_policy: ArchivePolicy | None = None) -> None:
        """`archive_policy`: outputs are archived (OUTPUT_STORE): a success queues it."""
        self.db = db
        backend: Backend = postgres.Backend(db) if db.is_postgresql else sqlite.Backend(db)
        self.watching = WatchStore(db)
        self.jobs = JobStore(db, backend)
        self.changes = ChangeStore(db, backend, self.watching.changed, archive_policy)
        self.callbacks = CallbackStore(db, self.watching.changed)
        self.clients = ClientStore(db, backend)
        self.stats = StatsStore(db)
        self.archives = ArchiveStore(db, self.watching.changed)
        self.series = SeriesStore(db)

    @classmethod
    def connect(cls, database_url: str, archive_policy: ArchivePolicy | None = None) -> Store:
        """A store on new engines for `database_url` (SQLite pragmas and its one writer,
        PostgreSQL pool sizes)."""
        return cls(Database.connect(database_url), archive_policy)

    @property
    def engine(self) -> AsyncEngine:
        """For readiness checks, plans and migrations' revision: reads only."""
        return self.db.engine

    def free_disk_bytes(self) -> int | None:
        """SQLite: bytes free on the filesystem that holds the database file."""
        url = self.db.engine.url
        if url.get_backend_name() != "sqlite" or not url.database:
            return None
        try:
            stat = os.statvfs(os.path.dirname(os.path.abspath(url.database)))
        except OSError:
            return None
        return stat.f_bavail * stat.f_frsize

    async def close(self) -> None:
        await self.db.close()
