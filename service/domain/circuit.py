"""The provider's health as one state, not one per job: a circuit breaker fed by outages
(connection errors, timeouts, 5xx). Closed: calls go out. After `threshold` outage answers
in a row it opens: nothing goes out. When `open_seconds` have passed it is half-open: one
probe may go out; any answer closes the circuit (a 429 or a bad reply still shows the
provider is there), an outage opens it again for longer (doubling up to `max_open_seconds`).
A probe that never settles (its job was skipped, its task cancelled) is replaced after
`probe_seconds`. Pure: `now` (monotonic seconds) is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# What an outcome of a provider call says about the provider (not about one job).
OUTAGE_KINDS = frozenset({"connection", "timeout", "server_error"})


@dataclass
class Circuit:
    threshold: int = 5
    open_seconds: float = 2.0
    max_open_seconds: float = 30.0
    probe_seconds: float = 60.0  # longer than any one provider call
    state: State = State.CLOSED
    failures: int = 0  # outage answers in a row
    opened_at: float = 0.0
    reopen_after: float = 0.0  # how long this opening lasts
    probing: bool = False  # a half-open probe is out
    probe_started: float = 0.0

    def allows(self, now: float) -> bool:
        """May a call go out now? In half-open, only one at a time (the probe), which this
        call takes."""
        if self.state is State.CLOSED:
            return True
        if self.state is State.OPEN:
            if now - self.opened_at < self.reopen_after:
                return False
            self.state = State.HALF_OPEN
        if self.probing and now - self.probe_started < self.probe_seconds:
            return False
        self.probing = True
        self.probe_started = now
        return True

    def capacity(self, now: float, wanted: int) -> int:
        """How many calls may start now out of `wanted`: all when closed, the one probe when
        half-open, none when open. Takes the probe when it grants it."""
        if self.state is State.CLOSED:
            return wanted
        return 1 if wanted > 0 and self.allows(now) else 0

    def succeeded(self, now: float) -> bool:
        """A call reached the provider and got an answer that is not an outage. True when
        this closed an open (or half-open) circuit: the backlog may go now."""
        self.failures = 0
        self.probing = False
        if self.state is State.CLOSED:
            return False
        self.state = State.CLOSED
        self.reopen_after = 0.0
        return True

    def failed(self, kind: str, now: float) -> bool:
        """A call failed. Only outages count toward opening; any other failure is an answer,
        which settles a probe as a success does. True when this opened it."""
        if kind not in OUTAGE_KINDS:
            self.succeeded(now)
            return False
        self.failures += 1
        was_probe, self.probing = self.probing, False
        if self.state is State.HALF_OPEN or was_probe:
            self._open(
                now, min(max(self.reopen_after * 2, self.open_seconds), self.max_open_seconds)
            )
            return True
        if self.state is State.CLOSED and self.failures >= self.threshold:
            self._open(now, self.open_seconds)
            return True
        return False

    def seconds_until_probe(self, now: float) -> float:
        if self.state is not State.OPEN:
            return 0.0
        return max(self.reopen_after - (now - self.opened_at), 0.0)

    def _open(self, now: float, seconds: float) -> None:
        self.state = State.OPEN
        self.opened_at = now
        self.reopen_after = seconds
