"""Before any money is spent: the spec, the credentials, the start slot (and Expo refusing the token)."""

from __future__ import annotations

from datetime import datetime

from publishing_operator.api import (
    COND_CREDENTIALS,
    COND_SUCCEEDED,
    BuildStatus,
    ConditionStatus,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
    SubmissionStatus,
)
from publishing_operator.lifecycle.transitions import Ctx, Transition, draft, hhmmss


def on_invalid_spec(status: PublishingBuildStatus, problem: str, ctx: Ctx) -> Transition:
    d = draft(status, ctx)
    d.phase(Phase.FAILED, Reason.INVALID_SPEC, f"Invalid spec: {problem}")
    d.event(
        Reason.INVALID_SPEC, f"Invalid spec: {problem}. Fix the manifest and create it again.", warning=True
    )
    return d.done()


def on_already_released(
    status: PublishingBuildStatus, *, build_id: str | None, completed_at: str | None, ctx: Ctx
) -> Transition:
    """A new resource repeats a release that already shipped (the release ledger says so: its
    predecessor was deleted by history limits or a TTL and re-created, e.g. by Argo CD)."""
    d = draft(status, ctx)
    when = f" on {completed_at}" if completed_at else ""
    build = f" as EAS build {build_id}" if build_id else ""
    message = (
        f"Already released{build}{when} by an earlier resource of the same name and spec, since deleted "
        "by history limits or a TTL; nothing was built again. Annotate publishing.dev/retry=<value> to "
        "build it anyway"
    )
    d.status.build = BuildStatus(id=build_id) if build_id else None
    d.phase(Phase.SUCCEEDED, Reason.ALREADY_RELEASED, message)
    d.event(Reason.ALREADY_RELEASED, message)
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
    """The Secrets were read and validated (ok) or are missing / malformed (not ok: stay Pending).

    "Validated" covers what the operator checked itself: the Secrets exist and their keys are
    well-formed. Whether Expo accepts the token shows only at the first EAS call (`on_unauthorized`),
    and the messages say so rather than "valid"."""
    d = draft(status, ctx)
    before = status.condition(COND_CREDENTIALS)
    if ok:
        d.condition(
            COND_CREDENTIALS,
            ConditionStatus.TRUE,
            Reason.VALIDATED,
            f"{message}; Expo accepts or refuses the token at the first EAS call",
        )
        if status.phase in (None, Phase.PENDING):
            d.status.attempt = d.status.attempt or 1
            d.phase(Phase.QUEUED, Reason.QUEUED, "Credentials well-formed; waiting for a build start slot")
            if before is not None and before.status == ConditionStatus.FALSE:
                d.event(
                    Reason.VALIDATED,
                    "The Secrets exist and hold well-formed credentials now; Expo has not yet "
                    "accepted the token (the first EAS call will tell)",
                )
        return d.done()
    d.condition(COND_CREDENTIALS, ConditionStatus.FALSE, reason, message)
    when = f"; checking again at {hhmmss(recheck_at)}" if recheck_at else ""
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
    d = draft(status, ctx)
    previous = status.condition(COND_SUCCEEDED)
    d.phase(Phase.QUEUED, reason, f"{detail}; next start slot expected at {hhmmss(retry_at)}")
    if previous is None or previous.reason != reason:
        d.event(str(reason), detail)
    return d.done()


def on_slot_granted(spec: PublishingBuildSpec, status: PublishingBuildStatus, ctx: Ctx) -> Transition:
    """A start slot is ours: write the request key *before* calling EAS (crash-safe, idempotent start).

    The finalizer goes on first: from this write on, EAS work may exist for the resource."""
    d = draft(status, ctx)
    attempt = d.status.attempt or 1
    d.status.attempt = attempt
    d.status.next_retry_time = None
    d.status.start_time = d.status.start_time or ctx.now
    d.claim("build")
    d.status.submission = None
    d.guard_with_finalizer = True
    source = f"GitHub ref {spec.source.github.ref}" if spec.source.github else "an archive"
    d.phase(Phase.BUILDING, Reason.BUILD_STARTING, f"Starting EAS build (attempt {attempt}) from {source}")
    return d.done()


def on_unauthorized(
    status: PublishingBuildStatus, secret_name: str, ctx: Ctx, *, nothing_sent: bool = False
) -> Transition:
    """Expo said 401 / UNAUTHORIZED: wait for the token Secret to be fixed; no attempt used.

    Waiting resources go back to Pending, and so does a build request that provably created
    nothing (`nothing_sent`: the create itself was refused). Otherwise a claimed request key is
    kept, whatever else happens: a build may exist for it (the 401 may have come after the create),
    so the key is resolved once the token works again, never given up."""
    d = draft(status, ctx)
    message = f'Expo rejected the token from Secret "{secret_name}" (unauthorized); update the Secret'
    before = status.condition(COND_CREDENTIALS)
    d.condition(COND_CREDENTIALS, ConditionStatus.FALSE, Reason.UNAUTHORIZED, message)
    unsent_build = nothing_sent and status.phase == Phase.BUILDING and not (status.build and status.build.id)
    unsent_submission = (
        nothing_sent and status.phase == Phase.SUBMITTING and not (status.submission and status.submission.id)
    )
    if status.phase in (Phase.QUEUED, Phase.PENDING, None) or unsent_build:
        if unsent_build:
            d.release_slot = True
            d.status.build = None
        d.phase(Phase.PENDING, Reason.CREDENTIALS_NOT_READY, message)
    else:
        if unsent_submission:
            d.status.submission = SubmissionStatus()  # claimed again once the token works
        d.status.message = f"{message}; the EAS work in flight is followed again once the token works"
    if before is None or before.reason != Reason.UNAUTHORIZED:
        d.event(Reason.UNAUTHORIZED, message, warning=True)
    return d.done()


def on_step_trouble(status: PublishingBuildStatus, problem: str, ctx: Ctx) -> Transition:
    """A step keeps failing for a transient reason (Expo or the network is down): say so in the
    message and an Event, keep phase and reason; it is retried in place and uses no attempt."""
    d = draft(status, ctx)
    d.status.message = f"{problem}; retrying with backoff (no attempt used)"
    d.event("Retrying", d.status.message, warning=True)
    return d.done()
