"""The anchor: the least a persisting receiver can do. A bare Starlette endpoint that parses
the JSON body and runs one UPDATE by primary key through a raw asyncpg pool (or, for the
SQLite run, one aiosqlite connection). Run it like the service: uvicorn, one process.

    python -m bench.anchor --database-url postgresql://… --port 8101
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROWS = 100_000


def build(database_url: str) -> Starlette:
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if database_url.startswith("sqlite"):
            import aiosqlite

            conn = await aiosqlite.connect(database_url.split("///", 1)[1])
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS anchor (id INTEGER PRIMARY KEY, n INTEGER, body TEXT)"
            )
            await conn.execute(
                "INSERT OR IGNORE INTO anchor (id, n, body) WITH RECURSIVE g(x) AS "
                f"(SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {ROWS}) SELECT x, 0, '' FROM g"
            )
            await conn.commit()

            async def update(row: int, body: str) -> None:
                await conn.execute(
                    "UPDATE anchor SET n = n + 1, body = ? WHERE id = ?", (body, row)
                )
                await conn.commit()

            state["update"] = update
            yield
            await conn.close()
            return
        import asyncpg

        pool = await asyncpg.create_pool(database_url, min_size=10, max_size=10)
        async with pool.acquire() as pg:
            await pg.execute(
                "CREATE TABLE IF NOT EXISTS anchor (id int PRIMARY KEY, n int, body text)"
            )
            await pg.execute(
                f"INSERT INTO anchor SELECT g, 0, '' FROM generate_series(1, {ROWS}) g ON CONFLICT DO NOTHING"
            )

        async def update_pg(row: int, body: str) -> None:
            await pool.execute("UPDATE anchor SET n = n + 1, body = $2 WHERE id = $1", row, body)

        state["update"] = update_pg
        yield
        await pool.close()

    async def hook(request: Request) -> Response:
        body = await request.body()
        data = json.loads(body)
        row = int(request.path_params["row"]) % ROWS + 1
        await state["update"](row, body.decode())
        return JSONResponse({"received": True, "status": data.get("status")})

    return Starlette(routes=[Route("/hook/{row:int}", hook, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    uvicorn.run(build(args.database_url), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
