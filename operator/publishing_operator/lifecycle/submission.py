"""The EAS submission of a finished build to App Store Connect / TestFlight or Google Play."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from publishing_operator.api import (
    AttemptResult,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
    SubmissionStatus,
)
from publishing_operator.lifecycle import eas
from publishing_operator.lifecycle.control import finish_cancelled, retry_or_fail
from publishing_operator.lifecycle.transitions import Ctx, Transition, _Draft, draft


@dataclass(frozen=True)
class SubmissionObservation:
    id: str
    status: str
    url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None


def on_submission_started(
    spec: PublishingBuildSpec,
    status: PublishingBuildStatus,
    submission: SubmissionObservation,
    *,
    adopted: bool,
    ctx: Ctx,
) -> Transition:
    d = draft(status, ctx)
    how = "Adopted existing" if adopted else "Created"
    d.event("SubmissionStarted", f"{how} EAS submission {submission.id}")
    return _observe_submission(spec, d, submission)


def on_submission_observed(
    spec: PublishingBuildSpec, status: PublishingBuildStatus, submission: SubmissionObservation, ctx: Ctx
) -> Transition:
    return _observe_submission(spec, draft(status, ctx), submission)


def _observe_submission(
    spec: PublishingBuildSpec, d: _Draft, submission: SubmissionObservation
) -> Transition:
    d.status.submission = _merge_submission(d.status.submission or SubmissionStatus(), submission)
    if submission.status in eas.SUBMISSION_WAITING or submission.status in eas.SUBMISSION_RUNNING:
        state = "running" if submission.status in eas.SUBMISSION_RUNNING else "waiting for a submitter"
        d.phase(Phase.SUBMITTING, Reason.SUBMISSION_IN_PROGRESS, f"EAS submission {submission.id} is {state}")
    elif submission.status == "FINISHED":
        d.record(AttemptResult.SUCCEEDED, Reason.SUCCEEDED, None)
        build_id = d.status.build.id if d.status.build else "?"
        d.phase(Phase.SUCCEEDED, Reason.SUCCEEDED, f"Build {build_id} submitted (submission {submission.id})")
        d.event(Reason.SUCCEEDED, f"Build {build_id} was submitted to the store (submission {submission.id})")
    elif submission.status == "ERRORED":
        code = submission.error_code or "UNKNOWN_ERROR"
        text = (
            f"EAS submission {submission.id} failed with {code}: {submission.error_message or 'no message'}"
        )
        retry_or_fail(spec, d, stage="submit", text=text)
    elif submission.status == "CANCELED":
        finish_cancelled(spec, d, what=f"EAS submission {submission.id}")
    else:  # a state Expo added after this operator was written: follow it (timeouts apply), say so
        d.phase(
            Phase.SUBMITTING,
            Reason.SUBMISSION_IN_PROGRESS,
            f"EAS submission {submission.id} is {submission.status}, a state this operator does not know; "
            "following it",
        )
    return d.done()


def _merge_submission(current: SubmissionStatus, submission: SubmissionObservation) -> SubmissionStatus:
    return current.model_copy(
        update={
            "id": submission.id,
            "status": submission.status,
            "url": submission.url or current.url,
            "error_code": submission.error_code,
            "error_message": submission.error_message,
            "created_at": submission.created_at or current.created_at,
            "completed_at": submission.completed_at or current.completed_at,
        }
    )


def on_submission_rejected(
    spec: PublishingBuildSpec,
    status: PublishingBuildStatus,
    *,
    error_code: str | None,
    message: str,
    ctx: Ctx,
) -> Transition:
    """EAS refused to create the submission (e.g. a validation error): counts as a failed attempt."""
    d = draft(status, ctx)
    text = f"EAS refused the submission: {error_code or 'USER_ERROR'}: {message}"
    if d.status.submission:
        d.status.submission.error_code = error_code
        d.status.submission.error_message = message
    retry_or_fail(spec, d, stage="submit", text=text)
    return d.done()
