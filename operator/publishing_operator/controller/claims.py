"""The timing of request-key claims: when a create may be sent, and when no create can still arrive.

The process that won a claim sends its create within SEND_DEADLINE of `requestedAt` (renewing the
claim first if it waited longer), and that request reaches Expo within the Expo request timeout or
never. So once `requestedAt + claim_window` has passed, by every operator's clock, a create for
that key either happened (and is visible on Expo) or never will: only then may another process,
or this one after a restart, give up the key and claim a new one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from publishing_operator import lifecycle as lc
from publishing_operator.controller.step_context import StepContext
from publishing_operator.settings import Settings


def send_deadline(settings: Settings) -> timedelta:
    """How long after its claim (or renewal) the holder may still send the create."""
    return settings.expo_timeout / 3


def claim_window(settings: Settings) -> timedelta:
    """After this, no create for a claimed key can still reach Expo."""
    return send_deadline(settings) + settings.expo_timeout + settings.clock_skew


def window_closes(sc: StepContext, requested_at: datetime | None) -> datetime:
    return (requested_at or sc.now()) + claim_window(sc.ctx.settings)


async def ensure_claim_current(sc: StepContext, stage: str) -> None:
    """Right before sending a create: renew the claim if it is older than the send deadline (a long
    archive upload, a retry after backoff). The renewal is a guarded write: if it is lost, the step
    starts over from the object as it is now and sends nothing."""
    target = sc.status.build if stage == "build" else sc.status.submission
    assert target is not None and target.request_key is not None
    requested = target.requested_at or sc.now()
    if sc.now() - requested >= send_deadline(sc.ctx.settings) * 0.5:
        await sc.commit(lc.on_claim_renewed(sc.status, stage, sc.lc_ctx()))
