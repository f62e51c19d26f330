"""Hand-written statements, kept verbatim in named `.sql` files (one `-- name: NAME` header
before each) and loaded by name, as procrastinate keeps its queries. The same text runs on
the asyncpg connection (`Database.driver`) and through SQLAlchemy (`exec_driver_sql`): no
rewriting in between. They hold mechanism only (compare-and-set on the state the caller
expects, events, counters); what a change means is decided in `service/domain`."""

from __future__ import annotations

import re
from importlib.resources import files

_HEADER = re.compile(r"^-- name: (\w+)[ \t]*$", re.MULTILINE)


def load(filename: str) -> dict[str, str]:
    text = files(__package__).joinpath(filename).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    statements = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if not statements:
        raise ValueError(f"{filename} names no statement")
    return statements


POSTGRESQL = load("postgresql.sql")
SQLITE = load("sqlite.sql")
