"""LISTEN/NOTIFY on PostgreSQL: a job created, or a callback queued, on any replica wakes
the workers that should act on it at once; a watched job's change wakes its waiters.
Periodic polling stays the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from service.store.engine import SUSPECT, asyncpg_dsn

log = logging.getLogger("service.listener")


class Listener:
    """Holds one asyncpg connection LISTENing on some channels; reconnects when it drops."""

    def __init__(
        self, database_url: str, channels: dict[str, Callable[[str | None], None]]
    ) -> None:
        """`channels[name](payload)`: a notification's payload, or None after (re)connecting
        (anything may have been sent while we were away: catch up on everything)."""
        self._dsn = asyncpg_dsn(database_url)
        self._channels = channels
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _callback(self, _conn: Any, _pid: int, channel: str, payload: object) -> None:
        handler = self._channels.get(channel)
        if handler is not None:
            handler(str(payload))

    async def _run(self) -> None:
        import asyncpg

        delay = 0.5
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                # the server went away: the pools' connections may have gone with it
                conn.add_termination_listener(lambda _conn: SUSPECT.raise_())
                for channel in self._channels:
                    await conn.add_listener(channel, self._callback)
                self.connected.set()
                delay = 0.5
                for handler in self._channels.values():
                    handler(None)  # catch up on anything sent while we were away
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
