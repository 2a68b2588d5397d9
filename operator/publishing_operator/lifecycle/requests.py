"""Requests whose outcome is not known yet: the exactly-once protocol of EAS creates, as transitions.

A build or submission is created only by the process whose status write claiming a fresh request
key won, right after that write. Anything else that finds a claimed key with no EAS id (a restart,
an ambiguous failure, a second operator) must first learn what happened: by the key, by the GitHub
receipt, by waiting until no create for the key can still reach Expo. Only then may it claim a new
key and create. These functions record each of those moments in the status.
"""

from __future__ import annotations

from datetime import datetime

from publishing_operator.api import (
    COND_SUCCEEDED,
    AttemptResult,
    Phase,
    PublishingBuildStatus,
    Reason,
)
from publishing_operator.lifecycle.transitions import Ctx, Transition, draft, hhmmss


def on_claimed(status: PublishingBuildStatus, stage: str, why: str, ctx: Ctx) -> Transition:
    """A new request key for the build or the submission: the old one provably created nothing
    (`why` says how we know), or a submission retry is due."""
    d = draft(status, ctx)
    key = d.claim(stage)
    if stage == "build":
        d.phase(Phase.BUILDING, Reason.BUILD_STARTING, f"Requesting the EAS build ({why}; request {key})")
    else:
        d.status.next_retry_time = None
        d.phase(Phase.SUBMITTING, Reason.SUBMISSION_STARTING, f"Submitting the build ({why}; request {key})")
    return d.done()


def on_claim_renewed(status: PublishingBuildStatus, stage: str, ctx: Ctx) -> Transition:
    """The claim holder is about to send its create after a while (a long archive upload, a retry
    of a request that provably never left): `requestedAt` moves to now, so no other process takes
    the key over while the create may still be on its way."""
    d = draft(status, ctx)
    target = d.status.build if stage == "build" else d.status.submission
    assert target is not None and target.request_key is not None
    target.requested_at = ctx.now
    return d.done()


def on_receipt(status: PublishingBuildStatus, receipt_id: str, ctx: Ctx) -> Transition:
    """Expo accepted a GitHub build request: its receipt will name the build."""
    d = draft(status, ctx)
    assert d.status.build is not None
    d.status.build.receipt_id = receipt_id
    d.phase(
        Phase.BUILDING, Reason.BUILD_STARTING, "Expo accepted the GitHub build request; waiting for the build"
    )
    return d.done()


def on_confirming(
    status: PublishingBuildStatus, stage: str, why: str, until: datetime, ctx: Ctx
) -> Transition:
    """The outcome of a create is unknown: say so (once), and until when the operator looks."""
    d = draft(status, ctx)
    previous = status.condition(COND_SUCCEEDED)
    what = "build" if stage == "build" else "submission"
    message = (
        f"Confirming whether EAS started the {what} ({why}); nothing new is created before {hhmmss(until)}"
    )
    d.phase(status.phase or Phase.BUILDING, Reason.CONFIRMING, message)
    if previous is None or previous.reason != Reason.CONFIRMING:
        d.event(Reason.CONFIRMING, message, warning=True)
    return d.done()


def on_unconfirmed(status: PublishingBuildStatus, detail: str, ctx: Ctx) -> Transition:
    """A GitHub build request's outcome stayed unknown past the bound: Expo may still have started it
    (its receipt latency is not ours to assume), so nothing more is created: Failed, for a human."""
    d = draft(status, ctx)
    d.release_slot = True
    text = (
        f"Expo may have started a build for request {status.build.request_key if status.build else '?'} "
        f"({detail}); to avoid a second build, nothing more was created. Check the app's builds on "
        "expo.dev, then annotate publishing.dev/retry=<new value> to start again"
    )
    d.record(AttemptResult.FAILED, Reason.UNCONFIRMED, text)
    d.phase(Phase.FAILED, Reason.UNCONFIRMED, text)
    d.event(Reason.UNCONFIRMED, text, warning=True)
    return d.done()
