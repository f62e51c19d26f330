"""`EXPLAIN` any statement the service runs (plan tests and benchmarks).

EXPLAIN without ANALYZE plans the statement and runs nothing, UPDATEs included.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


async def plan(conn: AsyncConnection, statement: Any) -> str:
    """The plan as text: one line per node (PostgreSQL) or per step (SQLite)."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors
    values = tuple(
        processors[name](params[name]) if name in processors else params[name]
        for name in compiled.positiontup or ()
    )
    if conn.dialect.name == "sqlite":
        rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)).all()
        return "\n".join(str(r[-1]) for r in rows)
    rows = (await conn.exec_driver_sql(f"EXPLAIN {compiled}", values)).all()
    return "\n".join(str(r[0]) for r in rows)
