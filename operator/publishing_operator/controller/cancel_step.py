"""How work ends: cancel (spec.cancel or a timeout), deletion in flight, a manual retry, an invalid
spec, and tidying a finished resource."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from publishing_operator import lifecycle as lc
from publishing_operator.api import (
    FINALIZER,
    FINISHED_PHASES,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
)
from publishing_operator.controller import commit
from publishing_operator.controller.build_step import locate
from publishing_operator.controller.build_step import observation as build_observation
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.credentials_step import ensure_credentials
from publishing_operator.controller.step_context import StepContext
from publishing_operator.controller.submission_step import observation as submission_observation
from publishing_operator.controller.worker import Worker, resource_version
from publishing_operator.expo.errors import ExpoError
from publishing_operator.expo.models import Build, Submission
from publishing_operator.lifecycle.eas import BUILD_CANCELLING, BUILD_TERMINAL, SUBMISSION_TERMINAL

# Deleting an in-flight resource cancels its EAS work first, but never holds deletion longer.
DELETE_CANCEL_TIMEOUT = timedelta(minutes=5)
CANCEL_SETTLE_POLL = 1.0  # PENDING_CANCEL → CANCELED is quick: look again soon


async def cancel(sc: StepContext) -> float:
    await sc.commit(lc.on_cancelling(sc.spec, sc.status, sc.lc_ctx()))
    cancelled = await cancel_on_eas(sc)
    if cancelled is None:
        await sc.commit(lc.on_nothing_to_cancel(sc.spec, sc.status, sc.lc_ctx()))
        return 0
    if isinstance(cancelled, Build):
        await sc.commit(lc.on_build_observed(sc.spec, sc.status, build_observation(cancelled), sc.lc_ctx()))
    else:
        await sc.commit(
            lc.on_submission_observed(sc.spec, sc.status, submission_observation(cancelled), sc.lc_ctx())
        )
    return CANCEL_SETTLE_POLL


async def finish_cancelled(sc: StepContext) -> float:
    """Cancel (or a timeout) with nothing on EAS to cancel."""
    await sc.commit(lc.on_nothing_to_cancel(sc.spec, sc.status, sc.lc_ctx()))
    return 0


async def nothing_left(sc: StepContext) -> None:
    """Finished: result label on, finalizer off (if a crash left them otherwise)."""
    await commit.tidy(sc.ctx, sc.worker, sc.status)


async def cancel_on_eas(sc: StepContext) -> Build | Submission | None:
    """Cancel this attempt's EAS work; None when nothing exists on EAS to cancel."""
    status, client = sc.status, sc.client
    if status.phase is Phase.SUBMITTING and status.submission:
        if status.submission.id:
            submission = await client.get_submission(status.submission.id)
            if submission.status.value in SUBMISSION_TERMINAL:
                return submission
            return await client.cancel_submission(status.submission.id)
        return None
    if status.build is None:
        return None
    current = (await locate(sc)).build  # by id, receipt, key (or a GitHub build provably ours)
    if current is None:
        return None  # nothing on EAS that we know of
    build_id = current.id
    if current.status.value in BUILD_TERMINAL | BUILD_CANCELLING:
        return current
    return await client.cancel_build(build_id)


async def finalize(ctx: OperatorContext, worker: Worker, status: PublishingBuildStatus) -> float | None:
    """The object is being deleted: cancel its EAS work (bounded), then let it go."""
    meta = worker.body.get("metadata", {})
    if FINALIZER not in (meta.get("finalizers") or []):
        return None
    now = ctx.clock()
    deleted_at = _parse_time(meta.get("deletionTimestamp")) or now
    if lc.eas_work_in_flight(status) and now - deleted_at < DELETE_CANCEL_TIMEOUT:
        try:
            spec = PublishingBuildSpec.model_validate(worker.body.get("spec") or {})
        except ValidationError:
            spec = None  # cannot happen for a resource that reached EAS; release it anyway
        if spec is not None:
            sc = StepContext(ctx, worker, spec, status, resource_version(worker.body))
            try:
                sc.credentials = await ensure_credentials(sc)
                if sc.credentials is not None:
                    result = await cancel_on_eas(sc)
                    if result is not None and result.status.value not in BUILD_TERMINAL | SUBMISSION_TERMINAL:
                        worker.log.info(
                            "deleting: EAS %s %s is %s; waiting for it to end",
                            type(result).__name__.lower(),
                            result.id,
                            result.status.value,
                        )
                        return 2.0
                    ctx.events.post(
                        worker.ref,
                        "Cancelled",
                        "Deleted while in flight; the EAS work was cancelled",
                        warning=False,
                    )
            except ExpoError as exc:
                if exc.is_transient:
                    raise
                worker.log.warning(
                    "deleting: could not cancel the EAS work (%s); releasing the resource", exc
                )
    elif lc.eas_work_in_flight(status):
        worker.log.warning(
            "deleting: gave up cancelling the EAS work after %s; releasing the resource",
            DELETE_CANCEL_TIMEOUT,
        )
    if status.build and status.build.request_key:
        ctx.limiter.release_in_flight(status.build.request_key)
    await commit.remove_finalizer(ctx, worker)
    return None


async def invalid_spec(
    ctx: OperatorContext, worker: Worker, status: PublishingBuildStatus, rv: str, exc: ValidationError
) -> float | None:
    """A spec the models refuse (the CRD should have): Failed with what to fix, once."""
    if status.phase in FINISHED_PHASES:
        await commit.tidy(ctx, worker, status)
        return None
    problem = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()[:3]
    )
    generation = worker.body.get("metadata", {}).get("generation")
    lc_ctx = lc.Ctx(
        uid=worker.uid, generation=generation if isinstance(generation, int) else None, now=ctx.clock()
    )
    await commit.apply(ctx, worker, status, lc.on_invalid_spec(status, problem, lc_ctx), rv)
    return 0


async def manual_retry(sc: StepContext, request: str) -> float:
    """`publishing.dev/retry` changed: the lifecycle decides whether it starts a fresh attempt budget."""
    await sc.commit(lc.on_manual_retry(sc.spec, sc.status, request, sc.lc_ctx()))
    return 0


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
