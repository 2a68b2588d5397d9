"""Queued: the start slot, from the circuit breaker (is Expo up?) and the global limiter."""

from __future__ import annotations

from datetime import timedelta

from publishing_operator import lifecycle as lc
from publishing_operator.api import Reason
from publishing_operator.controller.step_context import StepContext
from publishing_operator.limiter import Denial


async def acquire_slot(sc: StepContext) -> float:
    ctx, now = sc.ctx, sc.now()
    if not ctx.circuit.allows_new_work():
        wait = max(ctx.circuit.reopens_in(), 1.0)
        detail = (
            f"Expo's API keeps failing ({ctx.circuit.consecutive_failures} errors in a row); "
            "new builds wait until it recovers"
        )
        retry_at = now + timedelta(seconds=wait)
        await sc.commit(
            lc.on_slot_denied(
                sc.status,
                reason=Reason.EXPO_UNAVAILABLE,
                detail=detail,
                retry_at=retry_at,
                ctx=sc.lc_ctx(now),
            )
        )
        return wait
    key = lc.next_build_key(sc.worker.uid, sc.status)
    answer = ctx.limiter.try_acquire(key)
    if isinstance(answer, Denial):
        sc.worker.log.debug(
            "start slot denied (%s): %d of %d waiting", answer.reason, answer.position, answer.waiters
        )
        await sc.commit(
            lc.on_slot_denied(
                sc.status,
                reason=Reason.RATE_LIMITED,
                detail=answer.message,
                retry_at=answer.retry_at_datetime,
                ctx=sc.lc_ctx(now),
            )
        )
        return max(answer.retry_after.total_seconds(), 0.05)
    sc.worker.waiting_for_slot = False
    # The request key is written (and the write won) before EAS is called: crash-safe and no
    # other process can have written it at the same time.
    transition = lc.on_slot_granted(sc.spec, sc.status, sc.lc_ctx(now))
    assert transition.status.build is not None
    # Remembered before the write: if the write is applied but its answer lost, the status still
    # says the claim is this process's (claimedBy), and this process knows it sent nothing.
    sc.worker.fresh_key = transition.status.build.request_key
    await sc.commit(transition)
    return 0


async def wait_retry(sc: StepContext) -> float:
    """The backoff before the next attempt has not elapsed yet."""
    assert sc.status.next_retry_time is not None
    return max((sc.status.next_retry_time - sc.now()).total_seconds(), 0.0)
