"""The PublishingBuild lifecycle as pure functions: no kopf, no I/O, time passed in.

    Pending ─credentials ok─▶ Queued ─start slot─▶ Building ─FINISHED─▶ Submitting ─FINISHED─▶ Succeeded
       │                        │                   │ ERRORED, retryable ─▶ Queued (attempt+1, backoff)
       │                        │                   │ ERRORED: user error, no attempts left, timeout ─▶ Failed
       └─ invalid spec ─▶ Failed └───────────────────┴─ spec.cancel ─▶ cancel on EAS ─▶ Cancelled

Two kinds of functions live here:
- `next_step(spec, status, now)` reads the persisted status and says what the operator should do next
  (check credentials, ask for a start slot, create or adopt the build, poll it, ...). Because it is a
  function of the status alone, a restarted operator resumes exactly where the last one stopped.
- `on_*` functions take what was just observed (a credential check, a limiter answer, an EAS build or
  submission) and return a `Transition`: the next status plus the Events to post.

The reconciler (reconciler.py) performs the I/O and writes the status; it makes no decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from publishing_operator.api import (
    COND_CREDENTIALS,
    COND_SUCCEEDED,
    FINISHED_PHASES,
    HISTORY_LIMIT,
    SOURCE_NOT_ALLOWED_CODE,
    AttemptResult,
    BuildStatus,
    Condition,
    ConditionStatus,
    HistoryEntry,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
    SubmissionStatus,
)

# EAS build error codes that say the infrastructure failed, not the project: worth another attempt.
# Everything else (compile errors, bad config, bad credentials) fails at once: retrying wastes money.
RETRYABLE_BUILD_ERRORS = frozenset({"UNKNOWN_ERROR", "SERVER_ERROR", "EAS_BUILD_SYSTEM_DEPS_INSTALL_ERROR"})

# EAS states (strings, as Expo sends them).
BUILD_WAITING = frozenset({"NEW", "IN_QUEUE"})
BUILD_RUNNING = frozenset({"IN_PROGRESS"})
SUBMISSION_WAITING = frozenset({"AWAITING_BUILD", "IN_QUEUE"})


# ---------------------------------------------------------------------------------------------
# What to do next, read from the persisted status.


class Step(StrEnum):
    NOTHING = "Nothing"  # finished: nothing left to do
    CHECK_CREDENTIALS = "CheckCredentials"  # Pending: read and validate the Secrets
    ACQUIRE_SLOT = "AcquireSlot"  # Queued: ask the limiter for a start slot
    WAIT_RETRY = "WaitRetry"  # backoff before the next attempt has not elapsed
    START_BUILD = "StartBuild"  # a request key is written, no build id yet: adopt or create
    POLL_BUILD = "PollBuild"
    START_SUBMISSION = "StartSubmission"  # submission request key written, no id yet: adopt or create
    POLL_SUBMISSION = "PollSubmission"
    CANCEL = "Cancel"  # cancel requested (spec.cancel or timeout) and EAS work is in flight
    FINISH_CANCELLED = "FinishCancelled"  # cancel requested and nothing in flight on EAS


def next_step(spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime) -> Step:
    phase = status.phase
    if phase in FINISHED_PHASES:
        return Step.NOTHING
    if spec.cancel or timed_out(spec, status, now) is not None:
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
        return Step.POLL_SUBMISSION if submission.id else Step.START_SUBMISSION
    return Step.NOTHING


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


def build_request_key(uid: str, attempt: int) -> str:
    """Stamped into the EAS build's metadata message: `<uid>.<attempt>` finds the build after a crash."""
    return f"{uid}.{attempt}"


def submission_request_key(uid: str, attempt: int) -> str:
    return f"{uid}.{attempt}.submit"


# ---------------------------------------------------------------------------------------------
# Transitions.


@dataclass(frozen=True)
class Ctx:
    """Who and when: the resource's uid and generation, and the current time."""

    uid: str
    generation: int | None
    now: datetime


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the resource."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Transition:
    status: PublishingBuildStatus
    events: tuple[Event, ...] = ()
    release_slot: bool = False  # the build left flight: free its in-flight limiter slot


@dataclass
class _Draft:
    """Mutable working copy of the status while one transition is computed."""

    status: PublishingBuildStatus
    now: datetime
    generation: int | None
    uid: str
    events: list[Event] = field(default_factory=list)
    release_slot: bool = False

    def phase(self, phase: Phase, reason: Reason, message: str) -> None:
        self.status.phase = phase
        self.status.message = message
        self.status.observed_generation = self.generation or self.status.observed_generation
        if phase == Phase.SUCCEEDED:
            cond_status = ConditionStatus.TRUE
        elif phase in (Phase.FAILED, Phase.CANCELLED):
            cond_status = ConditionStatus.FALSE
        else:
            cond_status = ConditionStatus.UNKNOWN
        self.condition(COND_SUCCEEDED, cond_status, reason, message)
        # completionTime is set exactly when Succeeded leaves Unknown.
        if cond_status != ConditionStatus.UNKNOWN and self.status.completion_time is None:
            self.status.completion_time = self.now

    def condition(self, type_: str, status: ConditionStatus, reason: Reason, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, status, reason, message, self.now, self.generation
        )

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append(Event(reason, message, warning))

    def record(self, result: AttemptResult, reason: Reason, message: str | None) -> None:
        entry = HistoryEntry(
            attempt=self.status.attempt or 1,
            build_id=self.status.build.id if self.status.build else None,
            submission_id=self.status.submission.id if self.status.submission else None,
            result=result,
            reason=reason,
            message=message,
            finished_at=self.now,
        )
        self.status.history = [*self.status.history, entry][-HISTORY_LIMIT:]

    def done(self) -> Transition:
        return Transition(self.status, tuple(self.events), self.release_slot)


def _draft(status: PublishingBuildStatus, ctx: Ctx) -> _Draft:
    return _Draft(status.model_copy(deep=True), ctx.now, ctx.generation, ctx.uid)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: Reason | str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Upsert a metav1.Condition; lastTransitionTime moves only when the status value changes."""
    previous = next((c for c in conditions if c.type == type_), None)
    changed = previous is None or previous.status != status
    updated = Condition(
        type=type_,
        status=status,
        reason=str(reason),
        message=message,
        last_transition_time=now if changed or previous is None else previous.last_transition_time,
        observed_generation=generation,
    )
    return [updated if c.type == type_ else c for c in conditions] if previous else [*conditions, updated]


# -- admission: spec, credentials, start slot ---------------------------------------------------


def on_invalid_spec(status: PublishingBuildStatus, problem: str, ctx: Ctx) -> Transition:
    d = _draft(status, ctx)
    d.phase(Phase.FAILED, Reason.INVALID_SPEC, f"Invalid spec: {problem}")
    d.event(
        Reason.INVALID_SPEC, f"Invalid spec: {problem}. Fix the manifest and create it again.", warning=True
    )
    return d.done()


def on_credentials(
    status: PublishingBuildStatus,
    *,
    ok: bool,
    reason: Reason,
    message: str,
    ctx: Ctx,
    recheck_at: datetime | None = None,
) -> Transition:
    """The Secrets were read and validated (ok) or are missing / malformed (not ok: stay Pending)."""
    d = _draft(status, ctx)
    before = status.condition(COND_CREDENTIALS)
    if ok:
        d.condition(COND_CREDENTIALS, ConditionStatus.TRUE, Reason.VALIDATED, message)
        if status.phase in (None, Phase.PENDING):
            d.status.attempt = d.status.attempt or 1
            d.phase(Phase.QUEUED, Reason.QUEUED, "Credentials validated; waiting for a build start slot")
            if before is not None and before.status == ConditionStatus.FALSE:
                d.event(Reason.VALIDATED, "Credentials are valid now; the build can go on")
        return d.done()
    d.condition(COND_CREDENTIALS, ConditionStatus.FALSE, reason, message)
    when = f"; checking again at {_hhmmss(recheck_at)}" if recheck_at else ""
    if status.phase in (None, Phase.PENDING, Phase.QUEUED):
        d.phase(Phase.PENDING, Reason.CREDENTIALS_NOT_READY, f"{message}{when}")
    # In flight (a Secret vanished mid-build): keep following the EAS work once it is back.
    if before is None or before.status != ConditionStatus.FALSE or before.message != message:
        d.event(str(reason), message, warning=True)
    return d.done()


def on_slot_denied(
    status: PublishingBuildStatus, *, reason: Reason, detail: str, retry_at: datetime, ctx: Ctx
) -> Transition:
    """No start slot yet (rate limit, in-flight cap, Expo unavailable): stay Queued, say until when."""
    d = _draft(status, ctx)
    previous = status.condition(COND_SUCCEEDED)
    d.phase(Phase.QUEUED, reason, f"{detail}; next start slot expected at {_hhmmss(retry_at)}")
    if previous is None or previous.reason != reason:
        d.event(str(reason), detail)
    return d.done()


def on_slot_granted(spec: PublishingBuildSpec, status: PublishingBuildStatus, ctx: Ctx) -> Transition:
    """A start slot is ours: write the request key *before* calling EAS (crash-safe, idempotent start)."""
    d = _draft(status, ctx)
    attempt = d.status.attempt or 1
    d.status.attempt = attempt
    d.status.next_retry_time = None
    d.status.start_time = d.status.start_time or ctx.now
    d.status.build = BuildStatus(request_key=build_request_key(ctx.uid, attempt), requested_at=ctx.now)
    d.status.submission = None
    source = f"GitHub ref {spec.source.github.ref}" if spec.source.github else "an archive"
    d.phase(Phase.BUILDING, Reason.BUILD_STARTING, f"Starting EAS build (attempt {attempt}) from {source}")
    return d.done()


# -- the build -----------------------------------------------------------------------------------


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
    d = _draft(status, ctx)
    how = "Adopted existing" if adopted else "Started"
    link = f": {build.url}" if build.url else ""
    d.event("BuildStarted", f"{how} EAS build {build.id} (attempt {d.status.attempt or 1}){link}")
    return _observe_build(spec, d, build)


def on_build_observed(
    spec: PublishingBuildSpec, status: PublishingBuildStatus, build: BuildObservation, ctx: Ctx
) -> Transition:
    return _observe_build(spec, _draft(status, ctx), build)


def _observe_build(spec: PublishingBuildSpec, d: _Draft, build: BuildObservation) -> Transition:
    d.status.build = _merge_build(d.status.build or BuildStatus(), build)
    attempt = d.status.attempt or 1
    previous = d.status.condition(COND_SUCCEEDED)
    if build.status in BUILD_WAITING:
        where = (
            f"at position {build.queue_position} in the EAS queue"
            if build.queue_position
            else "queued on EAS"
        )
        eta = f", about {build.estimated_wait_seconds}s to wait" if build.estimated_wait_seconds else ""
        d.phase(Phase.BUILDING, Reason.BUILD_QUEUED, f"EAS build {build.id} is {where}{eta}")
    elif build.status in BUILD_RUNNING:
        d.phase(
            Phase.BUILDING, Reason.BUILD_IN_PROGRESS, f"EAS build {build.id} is running (attempt {attempt})"
        )
        if previous is None or previous.reason != Reason.BUILD_IN_PROGRESS:
            d.event("BuildRunning", f"EAS build {build.id} is running on a worker")
    elif build.status == "PENDING_CANCEL":
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
            d.status.submission = SubmissionStatus(
                request_key=submission_request_key(d.uid, attempt), requested_at=d.now
            )
            d.phase(Phase.SUBMITTING, Reason.SUBMISSION_STARTING, f"Submitting build {build.id} to {store}")
    elif build.status == "ERRORED":
        d.release_slot = True
        code = build.error_code or "UNKNOWN_ERROR"
        text = f"EAS build {build.id} failed with {code}: {build.error_message or 'no message'}"
        if code in RETRYABLE_BUILD_ERRORS:
            _retry_or_fail(spec, d, stage="build", text=text)
        else:
            d.record(AttemptResult.FAILED, Reason.BUILD_FAILED, text)
            d.phase(Phase.FAILED, Reason.BUILD_FAILED, text)
            d.event(Reason.BUILD_FAILED, f"{text}. A project error: not retried.", warning=True)
    elif build.status == "CANCELED":
        d.release_slot = True
        _finish_cancelled(spec, d, what=f"EAS build {build.id}")
    return d.done()


def _merge_build(current: BuildStatus, build: BuildObservation) -> BuildStatus:
    waiting = build.status in BUILD_WAITING
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
    d = _draft(status, ctx)
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


# -- the submission ------------------------------------------------------------------------------


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
    d = _draft(status, ctx)
    how = "Adopted existing" if adopted else "Created"
    d.event("SubmissionStarted", f"{how} EAS submission {submission.id}")
    return _observe_submission(spec, d, submission)


def on_submission_observed(
    spec: PublishingBuildSpec, status: PublishingBuildStatus, submission: SubmissionObservation, ctx: Ctx
) -> Transition:
    return _observe_submission(spec, _draft(status, ctx), submission)


def _observe_submission(
    spec: PublishingBuildSpec, d: _Draft, submission: SubmissionObservation
) -> Transition:
    d.status.submission = _merge_submission(d.status.submission or SubmissionStatus(), submission)
    if submission.status in SUBMISSION_WAITING or submission.status == "IN_PROGRESS":
        state = "running" if submission.status == "IN_PROGRESS" else "waiting for a submitter"
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
        _retry_or_fail(spec, d, stage="submit", text=text)
    elif submission.status == "CANCELED":
        _finish_cancelled(spec, d, what=f"EAS submission {submission.id}")
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
    d = _draft(status, ctx)
    text = f"EAS refused the submission: {error_code or 'USER_ERROR'}: {message}"
    if d.status.submission:
        d.status.submission.error_code = error_code
        d.status.submission.error_message = message
    _retry_or_fail(spec, d, stage="submit", text=text)
    return d.done()


# -- retries, cancellation, timeouts -------------------------------------------------------------


def _retry_or_fail(spec: PublishingBuildSpec, d: _Draft, *, stage: str, text: str) -> None:
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
    d.status.next_retry_time = _ceil_second(d.now + delay)
    when = _hhmmss(d.status.next_retry_time)
    if stage == "build":
        d.status.build = None
        d.status.submission = None
        msg = f"{text}; attempt {attempt + 1} of {spec.retry.max_attempts} starts after {when}"
        d.phase(Phase.QUEUED, Reason.RETRY_BACKOFF, msg)
    else:
        # A failed submission retries the submission of the same build, never the build.
        d.status.submission = SubmissionStatus(
            request_key=submission_request_key(d.uid, attempt + 1), requested_at=d.status.next_retry_time
        )
        msg = f"{text}; submission attempt {attempt + 1} of {spec.retry.max_attempts} starts after {when}"
        d.phase(Phase.SUBMITTING, Reason.RETRY_BACKOFF, msg)
    d.event("Retrying", msg, warning=True)


def _finish_cancelled(spec: PublishingBuildSpec, d: _Draft, *, what: str) -> None:
    """EAS work ended CANCELED: because the user asked, because a timeout fired, or outside the operator."""
    if spec.cancel:
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
    d = _draft(status, ctx)
    expired = timed_out(spec, status, ctx.now)
    why = "cancel requested" if spec.cancel else f"{expired} timeout exceeded"
    previous = status.condition(COND_SUCCEEDED)
    d.phase(status.phase or Phase.BUILDING, Reason.CANCELLING, f"Cancelling the EAS work: {why}")
    if previous is None or previous.reason != Reason.CANCELLING:
        d.event(Reason.CANCELLING, f"Cancelling the EAS work: {why}")
    return d.done()


def on_nothing_to_cancel(spec: PublishingBuildSpec, status: PublishingBuildStatus, ctx: Ctx) -> Transition:
    """Cancel or timeout with no EAS work to cancel (not started yet, or the create never happened)."""
    d = _draft(status, ctx)
    d.release_slot = status.phase == Phase.BUILDING
    if spec.cancel:
        d.record(AttemptResult.CANCELLED, Reason.CANCELLED, "cancelled before EAS work started")
        d.phase(Phase.CANCELLED, Reason.CANCELLED, "Cancelled as requested before any EAS work started")
        d.event(Reason.CANCELLED, "Cancelled as requested before any EAS work started")
    else:
        d.record(AttemptResult.FAILED, Reason.TIMEOUT, "timed out before the EAS work started")
        d.phase(Phase.FAILED, Reason.TIMEOUT, "Timed out before the EAS work started")
        d.event(Reason.TIMEOUT, "Timed out before the EAS work started", warning=True)
    return d.done()


def on_unauthorized(status: PublishingBuildStatus, secret_name: str, ctx: Ctx) -> Transition:
    """Expo said 401 / UNAUTHORIZED: back to Pending until the token Secret is fixed; no attempt used.

    A build that was about to be created (request key, no id) goes back to waiting too; a build
    that exists on EAS keeps its place and is followed again once the token works.
    """
    d = _draft(status, ctx)
    message = f'Expo rejected the token from Secret "{secret_name}" (unauthorized); update the Secret'
    before = status.condition(COND_CREDENTIALS)
    d.condition(COND_CREDENTIALS, ConditionStatus.FALSE, Reason.UNAUTHORIZED, message)
    not_started = status.phase == Phase.BUILDING and not (status.build and status.build.id)
    if status.phase in (Phase.QUEUED, Phase.PENDING, None) or not_started:
        if not_started:
            d.release_slot = True
            d.status.build = None
        d.phase(Phase.PENDING, Reason.CREDENTIALS_NOT_READY, message)
    if before is None or before.reason != Reason.UNAUTHORIZED:
        d.event(Reason.UNAUTHORIZED, message, warning=True)
    return d.done()


def on_step_trouble(status: PublishingBuildStatus, problem: str, ctx: Ctx) -> Transition:
    """A step keeps failing for a transient reason (Expo or the network is down): say so in the
    message and an Event, keep phase and reason; it is retried in place and uses no attempt."""
    d = _draft(status, ctx)
    d.status.message = f"{problem}; retrying with backoff (no attempt used)"
    d.event("Retrying", d.status.message, warning=True)
    return d.done()


def on_manual_retry(status: PublishingBuildStatus, request: str, ctx: Ctx) -> Transition:
    """`publishing.dev/retry` changed on a Failed/Cancelled resource: a fresh attempt budget."""
    d = _draft(status, ctx)
    d.status.retry_request = request
    d.status.attempt = 1
    d.status.build = None
    d.status.submission = None
    d.status.next_retry_time = None
    d.status.completion_time = None
    d.status.conditions = [c for c in d.status.conditions if c.type != COND_CREDENTIALS]
    d.phase(Phase.PENDING, Reason.CREDENTIALS_NOT_READY, f"Manual retry {request!r}: checking credentials")
    d.event("RetryRequested", f"Manual retry {request!r}: starting a fresh attempt budget")
    return d.done()


# -- helpers -------------------------------------------------------------------------------------


RESULT_LABELS = {Phase.SUCCEEDED: "succeeded", Phase.FAILED: "failed", Phase.CANCELLED: "cancelled"}


def result_label(phase: Phase | None) -> str | None:
    """Value of the `publishing.dev/result` label for a finished resource (None while running)."""
    return RESULT_LABELS.get(phase) if phase is not None else None


def _ceil_second(moment: datetime) -> datetime:
    """Status times have whole seconds: round up, so a backoff is never cut short."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def _hhmmss(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%SZ") if moment else "?"
