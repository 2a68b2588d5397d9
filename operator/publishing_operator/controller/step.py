"""One step of a worker: read the object, ask the lifecycle what comes next, run that step's
handler from the table, and keep transient trouble from ever being fatal."""

from __future__ import annotations

import contextlib

from pydantic import ValidationError

from publishing_operator import backoff
from publishing_operator import lifecycle as lc
from publishing_operator.adapters.kube import KubeError
from publishing_operator.api import RETRY_ANNOTATION
from publishing_operator.controller import (
    build_step,
    cancel_step,
    commit,
    credentials_step,
    slot_step,
    submission_step,
)
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.step_context import Handler, StepContext
from publishing_operator.controller.worker import Worker, generation_of, resource_version
from publishing_operator.expo.errors import ExpoError
from publishing_operator.metrics import RetryReason, Stage

# Transient trouble (Expo 5xx, network, Kubernetes API) is retried in place: 0.5 s, 1 s, 2 s ... 30 s.
TRANSIENT_BACKOFF_INITIAL = 0.5
TRANSIENT_BACKOFF_CAP = 30.0
TELL_USER_AFTER = 3  # consecutive transient failures before status and an Event say so
QUICK_CONFLICT_RETRIES = 3  # write conflicts retried at once (re-read first) before backing off


HANDLERS: dict[lc.Step, Handler] = {
    lc.Step.CHECK_CREDENTIALS: credentials_step.check_credentials,
    lc.Step.ACQUIRE_SLOT: slot_step.acquire_slot,
    lc.Step.WAIT_RETRY: slot_step.wait_retry,
    lc.Step.START_BUILD: build_step.start_build,
    lc.Step.POLL_BUILD: build_step.poll_build,
    lc.Step.CLAIM_SUBMISSION: submission_step.claim_submission,
    lc.Step.START_SUBMISSION: submission_step.start_submission,
    lc.Step.POLL_SUBMISSION: submission_step.poll_submission,
    lc.Step.CANCEL: cancel_step.cancel,
    lc.Step.FINISH_CANCELLED: cancel_step.finish_cancelled,
    lc.Step.NOTHING: cancel_step.nothing_left,
}
# Steps that talk to Expo with the resource's credentials.
EXPO_STEPS = frozenset(
    {
        lc.Step.START_BUILD,
        lc.Step.POLL_BUILD,
        lc.Step.START_SUBMISSION,
        lc.Step.POLL_SUBMISSION,
        lc.Step.CANCEL,
    }
)


async def step(ctx: OperatorContext, worker: Worker) -> float | None:
    """One step; transient trouble (API hiccups, Expo down) is retried in place, never fatal."""
    try:
        delay = await _step(ctx, worker)
        worker.transient_failures = 0
        return delay
    except KubeError as exc:
        if exc.conflict:
            return await _conflict(ctx, worker)
        ctx.metrics.retry(Stage.API, RetryReason.KUBERNETES_ERROR)
        return await _transient(ctx, worker, f"Kubernetes API: {exc}", tell_user=False)
    except ExpoError as exc:
        ctx.metrics.retry(Stage.API, RetryReason.EXPO_ERROR)
        if exc.is_transient:
            ctx.circuit.record_failure()
        return max(exc.retry_after or 0.0, await _transient(ctx, worker, str(exc)))
    except Exception:
        ctx.metrics.retry(Stage.API, RetryReason.UNEXPECTED_ERROR)
        worker.log.exception("unexpected error in a reconcile step; retrying")
        return await _transient(ctx, worker, "unexpected error (see the operator log)")


async def _step(ctx: OperatorContext, worker: Worker) -> float | None:
    body = worker.body
    meta = body.get("metadata", {})
    status = worker.status()
    rv = resource_version(body)
    if meta.get("deletionTimestamp"):
        return await cancel_step.finalize(ctx, worker, status)
    try:
        spec = worker.spec()
    except ValidationError as exc:
        return await cancel_step.invalid_spec(ctx, worker, status, rv, exc)
    sc = StepContext(ctx, worker, spec, status, rv)

    retry = (meta.get("annotations") or {}).get(RETRY_ANNOTATION)
    if retry is not None and retry != status.retry_request:
        return await cancel_step.manual_retry(sc, retry)

    generation = generation_of(body)
    next_step = lc.next_step(spec, status, sc.now(), generation=generation)
    worker.waiting_for_slot = next_step is lc.Step.ACQUIRE_SLOT
    if next_step in EXPO_STEPS:
        sc.credentials = await credentials_step.ensure_credentials(sc)
        if sc.credentials is None:
            delay: float | None = credentials_step.recheck_after(worker)
        else:
            delay = await credentials_step.unless_unauthorized(sc, HANDLERS[next_step])
    else:
        delay = await HANDLERS[next_step](sc)
    if lc.observed_generation_lags(sc.status, generation):
        # The spec changed (spec.cancel) and this step wrote nothing about it (a finished
        # resource, a backoff): acknowledge it, or kstatus tools report "progressing" for ever.
        await sc.commit(lc.on_spec_observed(spec, sc.status, sc.lc_ctx()))
    return delay


async def _conflict(ctx: OperatorContext, worker: Worker) -> float:
    """Someone wrote the object since this step read it: read it again and redo the step."""
    worker.transient_failures += 1
    try:
        fresh = await ctx.kube.get_publishing_build(worker.namespace, worker.name)
    except KubeError as exc:  # the re-read failed too: back off like any API trouble, never die
        ctx.metrics.retry(Stage.API, RetryReason.KUBERNETES_ERROR)
        return await _transient(ctx, worker, f"Kubernetes API: {exc}", tell_user=False)
    if fresh is not None:
        worker.body = dict(fresh)
    if worker.transient_failures <= QUICK_CONFLICT_RETRIES:
        return 0
    return _backoff(worker)


async def _transient(ctx: OperatorContext, worker: Worker, what: str, *, tell_user: bool = True) -> float:
    worker.transient_failures += 1
    delay = _backoff(worker)
    worker.log.warning("%s; retrying in %.1fs (not counted as an attempt)", what, delay)
    if tell_user and worker.transient_failures == TELL_USER_AFTER:
        # Still failing after a few quick retries: the user should see why nothing moves.
        status = worker.status()
        sc_ctx = lc.Ctx(uid=worker.uid, generation=None, now=ctx.clock())
        with contextlib.suppress(KubeError):
            await commit.apply(
                ctx, worker, status, lc.on_step_trouble(status, what, sc_ctx), resource_version(worker.body)
            )
    return delay


def _backoff(worker: Worker) -> float:
    seconds = backoff.exponential(
        worker.transient_failures, initial=TRANSIENT_BACKOFF_INITIAL, cap=TRANSIENT_BACKOFF_CAP
    )
    return backoff.spread(seconds, low=0.8, high=1.2)
