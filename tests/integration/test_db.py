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
