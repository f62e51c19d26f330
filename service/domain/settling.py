"""When a job is done for its client: *settled*, its status terminal and its outputs no
longer being kept (archived, given up on, or never kept), and which of its events settled
it. Every channel (a held answer, the event stream, the callback, the CLI) ends there.
Pure code."""

from __future__ import annotations

from service.domain.archive import PENDING
from service.domain.jobs import Event, Job
from service.domain.states import TERMINAL

TRANSITION = "transition"
ARCHIVED = "archived"


def is_settled(job: Job) -> bool:
    """Terminal, and not waiting for its outputs to be kept (`archive_status` done, failed,
    or None because nothing is kept). Once settled, a job stays settled."""
    return job.status in TERMINAL and job.archive_status != PENDING


def may_settle(event: Event) -> bool:
    """An event that settles its job when nothing comes after it: the archive's, or the
    transition into a terminal state."""
    if event.kind == ARCHIVED:
        return True
    return event.kind == TRANSITION and event.to_status in TERMINAL


def settles(event: Event, job: Job) -> bool:
    """Whether `event` is the one that settled `job`, for `job` read after the event was
    recorded: the archive's event when its outputs were kept (or given up on), else its
    terminal transition."""
    if not is_settled(job) or not may_settle(event):
        return False
    if job.archive_status is None:
        return event.kind == TRANSITION
    return event.kind == ARCHIVED
