"""What to do next, read from the persisted status alone: a restarted operator resumes exactly here."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from publishing_operator.api import (
    FINISHED_PHASES,
    BuildStatus,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    SubmissionStatus,
)


class Step(StrEnum):
    NOTHING = "Nothing"  # finished: nothing left to do
    CHECK_CREDENTIALS = "CheckCredentials"  # Pending: read and validate the Secrets
    ACQUIRE_SLOT = "AcquireSlot"  # Queued: ask the limiter for a start slot
    WAIT_RETRY = "WaitRetry"  # backoff before the next attempt has not elapsed
    START_BUILD = "StartBuild"  # a request key is written, no build id yet: adopt or create
    POLL_BUILD = "PollBuild"
    CLAIM_SUBMISSION = "ClaimSubmission"  # a submission retry is due: claim a new request key first
    START_SUBMISSION = "StartSubmission"  # submission request key written, no id yet: adopt or create
    POLL_SUBMISSION = "PollSubmission"
    CANCEL = "Cancel"  # cancel requested (spec.cancel or timeout) and EAS work is in flight
    FINISH_CANCELLED = "FinishCancelled"  # cancel requested and nothing in flight on EAS


def next_step(
    spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime, *, generation: int | None = None
) -> Step:
    """`generation` is the object's metadata.generation: which spec.cancel request is new."""
    phase = status.phase
    if phase in FINISHED_PHASES:
        return Step.NOTHING
    if cancel_requested(spec, status, generation) or timed_out(spec, status, now) is not None:
        return Step.CANCEL if eas_work_in_flight(status) else Step.FINISH_CANCELLED
    if phase in (None, Phase.PENDING):
        return Step.CHECK_CREDENTIALS
    if phase == Phase.QUEUED:
        if status.next_retry_time is not None and now < status.next_retry_time:
            return Step.WAIT_RETRY
        return Step.ACQUIRE_SLOT
    if phase == Phase.BUILDING:
        build = status.build or BuildStatus()
        return Step.POLL_BUILD if build.id else Step.START_BUILD
    if phase == Phase.SUBMITTING:
        if status.next_retry_time is not None and now < status.next_retry_time:
            return Step.WAIT_RETRY
        submission = status.submission or SubmissionStatus()
        if submission.id:
            return Step.POLL_SUBMISSION
        return Step.START_SUBMISSION if submission.request_key else Step.CLAIM_SUBMISSION
    return Step.NOTHING


def cancel_requested(
    spec: PublishingBuildSpec, status: PublishingBuildStatus, generation: int | None
) -> bool:
    """spec.cancel asks to cancel the current run: it is true, and not a request already spent on an
    earlier run (status.cancelHandledGeneration: a manual retry after a cancel is not cancelled by the
    same request; setting spec.cancel to false and then true again is a new one)."""
    if not spec.cancel:
        return False
    handled = status.cancel_handled_generation
    return handled is None or (generation is not None and generation > handled)


def eas_work_in_flight(status: PublishingBuildStatus) -> bool:
    """True when a build or submission may be running on EAS for this resource (or may be being created)."""
    if status.phase == Phase.BUILDING:
        return bool(status.build and status.build.request_key)
    if status.phase == Phase.SUBMITTING:
        return bool(status.submission and status.submission.request_key)
    return False


def timed_out(spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime) -> str | None:
    """Which step's `spec.timeouts` has expired ("build" / "submit"), measured from the step's start."""
    build, submission = status.build, status.submission
    if status.phase == Phase.BUILDING and build and build.requested_at:
        return "build" if now - build.requested_at > spec.timeouts.build_timeout else None
    if status.phase == Phase.SUBMITTING and submission and submission.requested_at:
        return "submit" if now - submission.requested_at > spec.timeouts.submit_timeout else None
    return None


def next_request_number(status: PublishingBuildStatus) -> int:
    """Request keys are numbered per resource and never reused (not even by a manual retry)."""
    return (status.request_count or 0) + 1


def next_build_key(uid: str, status: PublishingBuildStatus) -> str:
    """The key the next build request will claim (`_Draft.claim`); while Queued it is also the
    resource's place in the limiter's queue. Stamped into the EAS build's metadata message."""
    return f"{uid}.{next_request_number(status)}"


RESULT_LABELS = {Phase.SUCCEEDED: "succeeded", Phase.FAILED: "failed", Phase.CANCELLED: "cancelled"}


def result_label(phase: Phase | None) -> str | None:
    """Value of the `publishing.dev/result` label for a finished resource (None while running)."""
    return RESULT_LABELS.get(phase) if phase is not None else None
