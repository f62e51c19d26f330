"""The database's health as this process sees it: which errors mean "unavailable" (not a
bug), one log line per kind per interval while an outage lasts and one when it has ended for
a few seconds, and the last failure and success that readiness reports."""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("service.store.health")

UNREACHABLE, DISK_FULL, READ_ONLY, BUSY = "unreachable", "disk_full", "read_only", "busy"

# asyncpg's exception classes, by name (the driver need not be imported for SQLite).
_PG_UNREACHABLE = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "ClientCannotConnectError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "PostgresConnectionError",
        "InternalClientError",
        "ConnectionRejectionError",
    }
)
_PG_KINDS = {
    "ReadOnlySQLTransactionError": READ_ONLY,
    "DiskFullError": DISK_FULL,
    # Transient contention, like SQLite's "locked": the transaction was rolled back whole.
    "DeadlockDetectedError": BUSY,
    "SerializationError": BUSY,
}
_SQLITE_MESSAGES = (
    ("database or disk is full", DISK_FULL),
    ("disk i/o error", DISK_FULL),
    ("readonly database", READ_ONLY),
    ("unable to open database", UNREACHABLE),
    ("database is locked", BUSY),
)


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack = [exc]
    while stack and len(seen) < 10:
        e = stack.pop()
        if e in seen:
            continue
        seen.append(e)
        for nxt in (getattr(e, "orig", None), e.__cause__, e.__context__):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    return seen


def unavailable(exc: BaseException) -> str | None:
    """The kind of unavailability `exc` shows (the database unreachable, its disk full, it
    read-only, SQLite busy), or None: then it is not an outage but a fault to look into."""
    for e in _causes(exc):
        name = type(e).__name__
        if name in _PG_KINDS:
            return _PG_KINDS[name]
        if name in _PG_UNREACHABLE:
            return UNREACHABLE
        if isinstance(e, sqlite3.OperationalError):
            text = str(e).lower()
            for needle, kind in _SQLITE_MESSAGES:
                if needle in text:
                    return kind
        if isinstance(e, ConnectionError | TimeoutError):
            return UNREACHABLE
        if name == "InterfaceError" and "closed" in str(e).lower():
            return UNREACHABLE
        if name == "TimeoutError" and "QueuePool" in str(e):
            return UNREACHABLE
    return None


@dataclass
class Health:
    """Shared by every part of the process (like the metrics registry). While failures go
    on, one line per kind per interval, however they interleave with successes (a
    flapping database, a full disk that still takes reads); one line when the database has
    stayed well for `stable_seconds` after the last failure."""

    interval_seconds: float = 10.0
    stable_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    last_failure: float | None = None
    last_success: float | None = None
    _logged: dict[str, float] = field(default_factory=dict)
    _since_log: dict[str, int] = field(default_factory=dict)
    _down_since: float | None = None

    def failed(self, kind: str, where: str) -> None:
        """An operation met unavailability `kind`. Logged at most once per kind per
        interval, with how many it saw since the last line."""
        now = self.clock()
        self.last_failure = now
        if self._down_since is None:
            self._down_since = now
        self._since_log[kind] = self._since_log.get(kind, 0) + 1
        last = self._logged.get(kind)
        if last is None or now - last >= self.interval_seconds:
            count = self._since_log.pop(kind)
            self._logged[kind] = now
            log.warning(
                "database %s (%s); %d failure(s) of this kind since the last such line",
                kind.replace("_", " "),
                where,
                count,
            )

    def succeeded(self) -> None:
        """A database operation went through. An outage is over once nothing has failed
        for `stable_seconds`: then it is said once (a success between failures is not a
        recovery)."""
        now = self.clock()
        self.last_success = now
        if self._down_since is None or self.last_failure is None:
            return
        if now - self.last_failure < self.stable_seconds:
            return
        lasted = self.last_failure - self._down_since
        seen = sum(self._since_log.values())
        self._down_since = None
        self._logged.clear()
        self._since_log.clear()
        log.warning(
            "database available again: failures for %.1f s, none for %.1f s since "
            "(%d more failures)",
            lasted,
            now - self.last_failure,
            seen,
        )

    @property
    def down(self) -> bool:
        """The last thing seen was a failure (no success since)."""
        return self.last_failure is not None and (
            self.last_success is None or self.last_failure > self.last_success
        )


HEALTH = Health()


def report_failure(where: str, logger: logging.Logger) -> None:
    """The exception being handled, in a background loop: the database being away is an
    outage (one line per kind per interval); anything else a fault, with its traceback."""
    exc = sys.exc_info()[1]
    kind = unavailable(exc) if exc is not None else None
    if kind is not None:
        HEALTH.failed(kind, where)
    else:
        logger.exception("%s failed unexpectedly", where)
