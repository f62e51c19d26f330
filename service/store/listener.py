"""LISTEN/NOTIFY on PostgreSQL: a job created, or a callback queued, on any replica wakes
the workers that should act on it at once. Periodic polling stays the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from service.domain.wakeups import Wake
from service.store.engine import asyncpg_dsn
from service.store.queries import WAKE_CHANNEL

log = logging.getLogger("service.listener")


class Listener:
    """Holds one asyncpg connection LISTENing on CHANNEL; reconnects when it drops."""

    def __init__(self, database_url: str, on_notify: Callable[[Wake | None], None]) -> None:
        """`on_notify(cause)`: the cause a notification names, or None (unknown, or the
        catch-up after a reconnect: wake everything)."""
        self._dsn = asyncpg_dsn(database_url)
        self._on_notify = on_notify
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _callback(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            cause: Wake | None = Wake(str(payload))
        except ValueError:
            cause = None
        self._on_notify(cause)

    async def _run(self) -> None:
        import asyncpg

        delay = 0.5
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                await conn.add_listener(WAKE_CHANNEL, self._callback)
                self.connected.set()
                delay = 0.5
                self._on_notify(None)  # catch up on anything sent while we were away
                while not conn.is_closed():
                    await asyncio.sleep(5)
                    await conn.execute("SELECT 1")  # notice a dead connection
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "LISTEN connection lost (%s); retrying in %.1f s", type(exc).__name__, delay
                )
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
