"""Retries, cancellation, timeouts and manual retry: how an attempt ends and the next one begins."""

from __future__ import annotations

from publishing_operator.api import (
    COND_CREDENTIALS,
    COND_SUCCEEDED,
    FINISHED_PHASES,
    AttemptResult,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
    SubmissionStatus,
)
from publishing_operator.lifecycle.steps import cancel_requested, timed_out
from publishing_operator.lifecycle.transitions import Ctx, Transition, _Draft, ceil_second, draft, hhmmss


def retry_or_fail(spec: PublishingBuildSpec, d: _Draft, *, stage: str, text: str) -> None:
    """An attempt failed for a retryable reason: the next attempt after backoff, or Failed."""
    attempt = d.status.attempt or 1
    if attempt >= spec.retry.max_attempts:
        d.record(AttemptResult.FAILED, Reason.RETRIES_EXHAUSTED, text)
        msg = f"{text}; all {spec.retry.max_attempts} attempts used"
        d.phase(Phase.FAILED, Reason.RETRIES_EXHAUSTED, msg)
        d.event(Reason.RETRIES_EXHAUSTED, msg, warning=True)
        return
    d.record(
        AttemptResult.FAILED, Reason.BUILD_FAILED if stage == "build" else Reason.SUBMISSION_FAILED, text
    )
    delay = spec.retry.backoff.delay(attempt)
    d.status.attempt = attempt + 1
    d.status.next_retry_time = ceil_second(d.now + delay)
    when = hhmmss(d.status.next_retry_time)
    if stage == "build":
        d.status.build = None
        d.status.submission = None
        msg = f"{text}; attempt {attempt + 1} of {spec.retry.max_attempts} starts after {when}"
        d.phase(Phase.QUEUED, Reason.RETRY_BACKOFF, msg)
    else:
        # A failed submission retries the submission of the same build, never the build. Its new
        # request key is claimed when the backoff is over, right before the create.
        d.status.submission = SubmissionStatus()
        msg = f"{text}; submission attempt {attempt + 1} of {spec.retry.max_attempts} starts after {when}"
        d.phase(Phase.SUBMITTING, Reason.RETRY_BACKOFF, msg)
    d.event("Retrying", msg, warning=True)


def finish_cancelled(spec: PublishingBuildSpec, d: _Draft, *, what: str) -> None:
    """EAS work ended CANCELED: because the user asked, because a timeout fired, or outside the operator."""
    if cancel_requested(spec, d.status, d.generation):
        d.status.cancel_handled_generation = d.generation
        d.record(AttemptResult.CANCELLED, Reason.CANCELLED, f"{what} was cancelled")
        d.phase(Phase.CANCELLED, Reason.CANCELLED, f"Cancelled as requested; {what} was cancelled")
        d.event(Reason.CANCELLED, f"Cancelled as requested; {what} was cancelled")
        return
    expired = timed_out(spec, d.status, d.now)
    if expired is not None:
        limit = spec.timeouts.build if expired == "build" else spec.timeouts.submit
        text = f"The {expired} step exceeded its timeout of {limit}; {what} was cancelled"
        d.record(AttemptResult.FAILED, Reason.TIMEOUT, text)
        d.phase(Phase.FAILED, Reason.TIMEOUT, text)
        d.event(Reason.TIMEOUT, text, warning=True)
        return
    text = f"{what} was cancelled on Expo, outside this resource"
    d.record(AttemptResult.CANCELLED, Reason.CANCELLED, text)
    d.phase(Phase.CANCELLED, Reason.CANCELLED, text)
    d.event(Reason.CANCELLED, text, warning=True)


def on_cancelling(spec: PublishingBuildSpec, status: PublishingBuildStatus, ctx: Ctx) -> Transition:
    """About to cancel the EAS work in flight (spec.cancel or a timeout): say so once."""
    d = draft(status, ctx)
    expired = timed_out(spec, status, ctx.now)
    why = (
        "cancel requested"
        if cancel_requested(spec, status, ctx.generation)
        else f"{expired} timeout exceeded"
    )
    previous = status.condition(COND_SUCCEEDED)
    d.phase(status.phase or Phase.BUILDING, Reason.CANCELLING, f"Cancelling the EAS work: {why}")
    if previous is None or previous.reason != Reason.CANCELLING:
        d.event(Reason.CANCELLING, f"Cancelling the EAS work: {why}")
    return d.done()


def on_nothing_to_cancel(spec: PublishingBuildSpec, status: PublishingBuildStatus, ctx: Ctx) -> Transition:
    """Cancel or timeout with no EAS work to cancel (not started yet, or the create never happened)."""
    d = draft(status, ctx)
    d.release_slot = status.phase == Phase.BUILDING
    if cancel_requested(spec, status, ctx.generation):
        d.status.cancel_handled_generation = ctx.generation
        d.record(AttemptResult.CANCELLED, Reason.CANCELLED, "cancelled before EAS work started")
        d.phase(Phase.CANCELLED, Reason.CANCELLED, "Cancelled as requested before any EAS work started")
        d.event(Reason.CANCELLED, "Cancelled as requested before any EAS work started")
    else:
        d.record(AttemptResult.FAILED, Reason.TIMEOUT, "timed out before the EAS work started")
        d.phase(Phase.FAILED, Reason.TIMEOUT, "Timed out before the EAS work started")
        d.event(Reason.TIMEOUT, "Timed out before the EAS work started", warning=True)
    return d.done()


def on_manual_retry(
    spec: PublishingBuildSpec, status: PublishingBuildStatus, request: str, ctx: Ctx
) -> Transition:
    """`publishing.dev/retry` changed. On a Failed or Cancelled resource, or one that skipped a
    release the ledger says already shipped (AlreadyReleased): a fresh attempt budget. Running or
    succeeded: refused with a Warning Event, noted once so it is not repeated.

    A spec.cancel already true belongs to the run that ended: the new run is not cancelled by it
    (spec.cancel false, then true again, cancels the new run)."""
    d = draft(status, ctx)
    d.status.retry_request = request
    finished = status.condition(COND_SUCCEEDED)
    skipped = (
        status.phase is Phase.SUCCEEDED
        and finished is not None
        and finished.reason == Reason.ALREADY_RELEASED
    )
    if status.phase not in (Phase.FAILED, Phase.CANCELLED) and not skipped:
        why = (
            "it already succeeded"
            if status.phase is Phase.SUCCEEDED
            else f"it is {status.phase or 'Pending'}"
        )
        d.event("RetryIgnored", f"Retry {request!r} ignored: {why}", warning=True)
        return d.done()
    if spec.cancel:
        d.status.cancel_handled_generation = ctx.generation
    d.status.attempt = 1
    d.status.build = None
    d.status.submission = None
    d.status.next_retry_time = None
    d.status.completion_time = None
    d.status.conditions = [c for c in d.status.conditions if c.type != COND_CREDENTIALS]
    d.clear_result_label = True
    d.phase(Phase.PENDING, Reason.CREDENTIALS_NOT_READY, f"Manual retry {request!r}: checking credentials")
    d.event("RetryRequested", f"Manual retry {request!r}: starting a fresh attempt budget")
    return d.done()


def on_spec_observed(spec: PublishingBuildSpec, status: PublishingBuildStatus, ctx: Ctx) -> Transition:
    """The spec changed and no step acted on it (a finished resource, a backoff): acknowledge the
    generation. spec.cancel on a finished resource cancels nothing: say so, once."""
    d = draft(status, ctx)
    finished = status.phase in FINISHED_PHASES
    if finished and cancel_requested(spec, status, ctx.generation) and status.phase is not Phase.CANCELLED:
        d.event(
            "CancelIgnored",
            f"spec.cancel changes nothing: the resource already finished ({status.phase}); "
            "nothing runs on EAS for it",
        )
    return d.done()
