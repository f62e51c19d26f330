"""Hand-written statements, kept verbatim in named `.sql` files (one `-- name: NAME` header
before each) and loaded by name, as procrastinate keeps its queries. The same text runs on
the asyncpg connection (`Database.driver`) and through SQLAlchemy (`exec_driver_sql`): no
rewriting in between, except that `{UNFINISHED}` and `{FINISHED}` become the state lists of
`service.domain.states` (the one definition of those sets), and PostgreSQL's `{EVENTS($n)}`
the rows of the events a statement records (the one definition of an event's columns). They hold mechanism only
(compare-and-set on the state the caller expects, events, counters); what a change means is
decided in `service/domain`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.resources import files

from service.domain.states import TERMINAL, UNFINISHED, JobStatus

_HEADER = re.compile(r"^-- name: (\w+)[ \t]*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{([A-Z_]+)\}")
_EVENTS = re.compile(r"\{EVENTS\((\$\d+)\)\}")
_EVENT_ROWS = (
    "ROWS FROM (jsonb_to_recordset({param}::jsonb) AS (kind varchar, source varchar,"
    " from_status varchar, to_status varchar, detail jsonb))"
    " WITH ORDINALITY AS e(kind, source, from_status, to_status, detail, ord)"
)


def state_list(states: Iterable[JobStatus]) -> str:
    """`'queued', 'processing'`: a set of states as SQL literals, in the machine's order."""
    chosen = set(states)
    return ", ".join(f"'{s.value}'" for s in JobStatus if s in chosen)


STATE_SETS = {"UNFINISHED": state_list(UNFINISHED), "FINISHED": state_list(TERMINAL)}


def load(filename: str) -> dict[str, str]:
    text = files(__package__).joinpath(filename).read_text(encoding="utf-8")
    text = _EVENTS.sub(lambda m: _EVENT_ROWS.format(param=m.group(1)), text)
    text = _PLACEHOLDER.sub(lambda m: STATE_SETS[m.group(1)], text)
    parts = _HEADER.split(text)
    statements = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if not statements:
        raise ValueError(f"{filename} names no statement")
    return statements


POSTGRESQL = load("postgresql.sql")
SQLITE = load("sqlite.sql")
