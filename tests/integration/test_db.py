"""`Database.run`: one transaction per call, committed or rolled back alone, on both
backends; on SQLite, concurrent calls batched on the one writer thread."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, text

from service.store import Store


async def test_a_failing_transaction_rolls_back_alone(store: Store) -> None:
    def write(value: str, fail: bool = False):  # type: ignore[no-untyped-def]
        def tx(conn: Connection) -> str:
            conn.execute(
                text("INSERT INTO service_state (key, value) VALUES (:k, :v)"),
                {"k": value, "v": value},
            )
            if fail:
                raise RuntimeError(value)
            return value

        return tx

    results = await asyncio.gather(
        *[store.db.run(write(f"k{i}", fail=i % 3 == 1)) for i in range(9)],
        return_exceptions=True,
    )
    assert [isinstance(r, RuntimeError) for r in results] == [i % 3 == 1 for i in range(9)]
    async with store.db.read() as conn:
        kept = {r[0] for r in await conn.execute(text("SELECT key FROM service_state"))}
    assert kept == {f"k{i}" for i in range(9) if i % 3 != 1}


async def test_a_statement_error_reaches_the_caller_and_the_writer_goes_on(store: Store) -> None:
    with pytest.raises(Exception, match="no such table|does not exist"):
        await store.db.run(lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
    assert await store.db.run(lambda conn: conn.execute(text("SELECT 1")).scalar_one()) == 1


async def test_sqlite_writer_without_its_file_fails_each_write_and_recovers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The database file cannot be opened (a volume not mounted yet): each write fails with
    the reason, none waits for ever, and writes succeed once the file can be opened."""
    from service.store.db import SqliteWriter
    from service.store.health import UNREACHABLE, unavailable

    folder = tmp_path / "not-yet"
    writer = SqliteWriter(f"sqlite+aiosqlite:///{folder / 'x.db'}")
    try:
        for _ in range(3):
            with pytest.raises(Exception) as info:
                await asyncio.wait_for(
                    writer.run(lambda conn: conn.execute(text("SELECT 1")).scalar_one()), 5
                )
            assert unavailable(info.value) == UNREACHABLE
        folder.mkdir()
        for _ in range(100):  # the writer connects again within RECONNECT_SECONDS
            try:
                value = await asyncio.wait_for(
                    writer.run(lambda conn: conn.execute(text("SELECT 1")).scalar_one()), 5
                )
                break
            except Exception:
                await asyncio.sleep(0.05)
        assert value == 1
    finally:
        await writer.close()
    with pytest.raises(RuntimeError, match="stopped"):
        await writer.run(lambda conn: None)
