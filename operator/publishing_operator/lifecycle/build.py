"""The EAS build: started (or adopted), observed while it runs, and how each end is read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from publishing_operator.api import (
    COND_SUCCEEDED,
    SOURCE_NOT_ALLOWED_CODE,
    AttemptResult,
    BuildStatus,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
)
from publishing_operator.lifecycle import eas
from publishing_operator.lifecycle.control import finish_cancelled, retry_or_fail
from publishing_operator.lifecycle.transitions import Ctx, Transition, _Draft, draft


@dataclass(frozen=True)
class BuildObservation:
    """What EAS says about a build (fields as Expo names them, normalised)."""

    id: str
    status: str
    url: str | None = None
    artifact_url: str | None = None
    queue_position: int | None = None
    estimated_wait_seconds: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None


def on_build_started(
    spec: PublishingBuildSpec,
    status: PublishingBuildStatus,
    build: BuildObservation,
    *,
    adopted: bool,
    ctx: Ctx,
) -> Transition:
    """The build exists on EAS (just created, or found by its request key after a restart)."""
    d = draft(status, ctx)
    how = "Adopted existing" if adopted else "Started"
    link = f": {build.url}" if build.url else ""
    d.event("BuildStarted", f"{how} EAS build {build.id} (attempt {d.status.attempt or 1}){link}")
    return _observe_build(spec, d, build)


def on_build_observed(
    spec: PublishingBuildSpec, status: PublishingBuildStatus, build: BuildObservation, ctx: Ctx
) -> Transition:
    return _observe_build(spec, draft(status, ctx), build)


def _observe_build(spec: PublishingBuildSpec, d: _Draft, build: BuildObservation) -> Transition:
    d.status.build = _merge_build(d.status.build or BuildStatus(), build)
    attempt = d.status.attempt or 1
    previous = d.status.condition(COND_SUCCEEDED)
    if build.status in eas.BUILD_WAITING:
        where = (
            f"at position {build.queue_position} in the EAS queue"
            if build.queue_position
            else "queued on EAS"
        )
        eta = f", about {build.estimated_wait_seconds}s to wait" if build.estimated_wait_seconds else ""
        d.phase(Phase.BUILDING, Reason.BUILD_QUEUED, f"EAS build {build.id} is {where}{eta}")
    elif build.status in eas.BUILD_RUNNING:
        d.phase(
            Phase.BUILDING, Reason.BUILD_IN_PROGRESS, f"EAS build {build.id} is running (attempt {attempt})"
        )
        if previous is None or previous.reason != Reason.BUILD_IN_PROGRESS:
            d.event("BuildRunning", f"EAS build {build.id} is running on a worker")
    elif build.status in eas.BUILD_CANCELLING:
        d.phase(Phase.BUILDING, Reason.CANCELLING, f"EAS build {build.id} is being cancelled")
    elif build.status == "FINISHED":
        d.release_slot = True
        artifact = f"; artifact {build.artifact_url}" if build.artifact_url else ""
        d.event("BuildFinished", f"EAS build {build.id} finished{artifact}")
        if spec.submit is None:
            d.record(AttemptResult.SUCCEEDED, Reason.SUCCEEDED, None)
            d.phase(
                Phase.SUCCEEDED, Reason.SUCCEEDED, f"EAS build {build.id} finished; no submission requested"
            )
            d.event(Reason.SUCCEEDED, f"Build {build.id} succeeded")
        else:
            store = "App Store Connect / TestFlight" if spec.submit.ios else "Google Play"
            d.claim("submission")
            d.phase(Phase.SUBMITTING, Reason.SUBMISSION_STARTING, f"Submitting build {build.id} to {store}")
    elif build.status == "ERRORED":
        d.release_slot = True
        code = build.error_code or "UNKNOWN_ERROR"
        text = f"EAS build {build.id} failed with {code}: {build.error_message or 'no message'}"
        if code in eas.RETRYABLE_BUILD_ERRORS:
            retry_or_fail(spec, d, stage="build", text=text)
        else:
            d.record(AttemptResult.FAILED, Reason.BUILD_FAILED, text)
            d.phase(Phase.FAILED, Reason.BUILD_FAILED, text)
            d.event(Reason.BUILD_FAILED, f"{text}. A project error: not retried.", warning=True)
    elif build.status == "CANCELED":
        d.release_slot = True
        finish_cancelled(spec, d, what=f"EAS build {build.id}")
    else:  # a state Expo added after this operator was written: follow the build (timeouts apply), say so
        d.phase(
            Phase.BUILDING,
            Reason.BUILD_IN_PROGRESS,
            f"EAS build {build.id} is {build.status}, a state this operator does not know; following it",
        )
    return d.done()


def _merge_build(current: BuildStatus, build: BuildObservation) -> BuildStatus:
    waiting = build.status in eas.BUILD_WAITING
    return current.model_copy(
        update={
            "id": build.id,
            "status": build.status,
            "url": build.url or current.url,
            "artifact_url": build.artifact_url or current.artifact_url,
            "queue_position": build.queue_position if waiting else None,
            "estimated_wait_seconds": build.estimated_wait_seconds if waiting else None,
            "error_code": build.error_code,
            "error_message": build.error_message,
            "created_at": build.created_at or current.created_at,
            "completed_at": build.completed_at or current.completed_at,
        }
    )


def on_build_rejected(
    status: PublishingBuildStatus, *, error_code: str | None, message: str, ctx: Ctx
) -> Transition:
    """EAS refused to create the build with a user error (bad project id, profile, job), or the
    operator's archive source policy refused the source before any EAS call: fail at once."""
    d = draft(status, ctx)
    d.release_slot = True
    if error_code == SOURCE_NOT_ALLOWED_CODE:
        reason, text = Reason.SOURCE_NOT_ALLOWED, message  # the policy's own text; nothing from EAS
    else:
        reason, text = Reason.BUILD_FAILED, f"EAS refused the build: {error_code or 'USER_ERROR'}: {message}"
        if d.status.build:
            d.status.build.error_code = error_code
            d.status.build.error_message = message
    d.record(AttemptResult.FAILED, reason, text)
    d.phase(Phase.FAILED, reason, text)
    d.event(reason, text, warning=True)
    return d.done()
