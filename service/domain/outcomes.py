"""What a provider reply means for a job: pure decisions, applied by the store with CAS."""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.replies import ProviderReply, ReplyKind
from service.domain.states import JobStatus, can_transition

# Stable error codes (README, "Error codes").
PROVIDER_ERROR = "provider_error"  # the provider said `error` or `failed` for this job
PROVIDER_REJECTED = "provider_rejected"  # HTTP 400/401/402/403 on submit
TIMED_OUT = "timed_out"  # JOB_TIMEOUT_SECONDS passed


@dataclass(frozen=True)
class Outcome:
    """`to_status` None means: not final, keep waiting (and polling)."""

    to_status: JobStatus | None
    output: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    eta_seconds: float | None = None
    warning: str | None = None


def outcome_of(reply: ProviderReply) -> Outcome:
    if reply.kind is ReplyKind.SUCCESS:
        return Outcome(JobStatus.SUCCEEDED, output=reply.output)
    if reply.kind is ReplyKind.ERROR:
        return Outcome(
            JobStatus.FAILED,
            error_code=PROVIDER_ERROR,
            error_message=reply.message or f"provider answered {reply.raw_status!r}",
        )
    if reply.kind is ReplyKind.PROCESSING:
        return Outcome(None, eta_seconds=reply.eta_seconds)
    if reply.problem:
        warning = f"malformed_reply:{reply.problem}"
    elif reply.raw_status.lower() == "success":
        warning = "success_without_output"
    else:
        warning = f"unknown_status:{reply.raw_status[:64]}"
    return Outcome(None, eta_seconds=reply.eta_seconds, warning=warning)


def path_to(from_status: JobStatus, to_status: JobStatus) -> list[JobStatus]:
    """The legal steps from one state to another, or [] when there is none.

    A queued job that the provider reports finished (a webhook that beat the submit reply,
    or a submit answered `success` at once) goes through `processing`, so every job's
    history reads queued → processing → succeeded.
    """
    if can_transition(from_status, to_status):
        return [to_status]
    if from_status is JobStatus.QUEUED and to_status is JobStatus.SUCCEEDED:
        return [JobStatus.PROCESSING, JobStatus.SUCCEEDED]
    return []
