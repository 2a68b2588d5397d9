"""Queued: the start slot, from the circuit breaker (is Expo up?) and the global limiter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from publishing_operator import lifecycle as lc
from publishing_operator.api import PublishingBuildStatus, Reason
from publishing_operator.controller.step_context import StepContext
from publishing_operator.limiter import Denial


@dataclass(frozen=True)
class SlotAnswer:
    transition: lc.Transition  # the claim (granted) or Queued with what blocks it
    delay: float  # when to step again
    granted: bool


async def acquire_slot(sc: StepContext) -> float:
    answer = ask_for_slot(sc, sc.status)
    if answer.granted:
        sc.worker.waiting_for_slot = False
    # Granted: the request key is written (and the write won) before EAS is called: crash-safe and
    # no other process can have written it at the same time. The claim becomes this worker's unsent
    # claim (StepContext.commit): the create follows at once.
    await sc.commit(answer.transition)
    return answer.delay


def ask_for_slot(sc: StepContext, status: PublishingBuildStatus) -> SlotAnswer:
    """Ask the circuit breaker and the limiter for a start slot for a Queued `status` (the step's,
    or the one a credential check is about to write: then both go in one write)."""
    ctx, now = sc.ctx, sc.now()
    if not ctx.circuit.allows_new_work():
        wait = max(ctx.circuit.reopens_in(), 1.0)
        detail = (
            f"Expo's API keeps failing ({ctx.circuit.consecutive_failures} errors in a row); "
            "new builds wait until it recovers"
        )
        retry_at = now + timedelta(seconds=wait)
        denied = lc.on_slot_denied(
            status, reason=Reason.EXPO_UNAVAILABLE, detail=detail, retry_at=retry_at, ctx=sc.lc_ctx(now)
        )
        return SlotAnswer(denied, wait, granted=False)
    key = lc.next_build_key(sc.worker.uid, status)
    answer = ctx.limiter.try_acquire(key)
    if isinstance(answer, Denial):
        sc.worker.log.debug(
            "start slot denied (%s): %d of %d waiting", answer.reason, answer.position, answer.waiters
        )
        denied = lc.on_slot_denied(
            status,
            reason=Reason.RATE_LIMITED,
            detail=answer.message,
            retry_at=answer.retry_at_datetime,
            ctx=sc.lc_ctx(now),
        )
        return SlotAnswer(denied, max(answer.retry_after.total_seconds(), 0.05), granted=False)
    return SlotAnswer(lc.on_slot_granted(sc.spec, status, sc.lc_ctx(now)), 0, granted=True)


async def wait_retry(sc: StepContext) -> float:
    """The backoff before the next attempt has not elapsed yet."""
    assert sc.status.next_retry_time is not None
    return max((sc.status.next_retry_time - sc.now()).total_seconds(), 0.0)
