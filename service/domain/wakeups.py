"""Why a worker should look for work now rather than at its next tick; the names travel
between replicas as NOTIFY payloads."""

from __future__ import annotations

from enum import StrEnum


class Wake(StrEnum):
    JOB_CREATED = "job_created"  # the submitter: a queued job is due
    SLOT_FREED = "slot_freed"  # the submitter: a job finished, the provider has room
    CALLBACK_DUE = "callback_due"  # the notifier: a callback is queued (or replayed)
    ARCHIVE_DUE = "archive_due"  # the archiver: a job succeeded, its outputs are to be kept
