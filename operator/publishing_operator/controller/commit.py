"""Carrying out a Transition: the status write (won, not just made), its Events and its effects,
plus the metadata the operator owns on the object (its finalizer and the result label)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from publishing_operator import lifecycle as lc
from publishing_operator.adapters.kube import KubeError
from publishing_operator.api import FINALIZER, RESULT_LABEL, PublishingBuildStatus
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.worker import Worker, resource_version


async def apply(
    ctx: OperatorContext, worker: Worker, before: PublishingBuildStatus, transition: lc.Transition, rv: str
) -> str:
    """Write `transition` over `before`, which was read at resourceVersion `rv`; return the new one.

    The status patch carries `rv` as a precondition: if anyone (a user, another operator process)
    wrote the object since, the API answers 409 and nothing of this transition happens (the step
    is recomputed from a fresh read). Events and effects follow only a write that was won.
    """
    effects = transition.effects
    if effects.guard_with_finalizer:
        rv = await ensure_finalizer(ctx, worker, rv, before)
    after = transition.status.to_json()
    patch = merge_patch(worker.status_json(before), after)
    if patch:
        updated = await ctx.kube.patch_status(
            worker.namespace, worker.name, patch, resource_version=rv or None
        )
        # Guarded by `rv`: the stored status was `before`, so it is now exactly `transition.status`
        # (no need to parse it again from the answer or the watch echo).
        worker.wrote(updated, transition.status if rv else None, after)
        ctx.health.note_write(updated)
        rv = resource_version(updated)
        ctx.metrics.status_changed(worker.body, before, transition.status)
    for event in transition.events:
        ctx.events.post(worker.ref, event.reason, event.message, warning=event.warning)
    if effects.release_slot and before.build and before.build.request_key:
        ctx.limiter.release_in_flight(before.build.request_key)
    if effects.leave_queue:
        ctx.limiter.forget(lc.next_build_key(worker.uid, before))
    if transition.status.phase != before.phase:
        worker.log.info(
            "phase %s -> %s: %s", before.phase or "-", transition.status.phase, transition.status.message
        )
    if effects.finished:
        await tidy(ctx, worker, transition.status)
        ctx.retention.trigger()  # history limits may now be exceeded
    elif effects.drop_finalizer:
        await patch_metadata(ctx, worker, finalizer_removal_ops(worker.body))
    if effects.clear_result_label:
        await patch_metadata(ctx, worker, label_ops(worker.body, None))
    return resource_version(worker.body)


async def tidy(ctx: OperatorContext, worker: Worker, status: PublishingBuildStatus) -> None:
    """A finished resource: result label on and finalizer off, in one write."""
    await patch_metadata(
        ctx,
        worker,
        label_ops(worker.body, lc.result_label(status.phase)) + finalizer_removal_ops(worker.body),
    )


async def ensure_finalizer(
    ctx: OperatorContext, worker: Worker, rv: str, status: PublishingBuildStatus | None = None
) -> str:
    """Our finalizer on, guarded by `rv` (the version the caller's decision was made on, whose
    status is `status`: unchanged by this write)."""
    finalizers = worker.body.get("metadata", {}).get("finalizers")
    if finalizers and FINALIZER in finalizers:
        return rv
    ops: list[dict[str, Any]]
    if finalizers:
        ops = [{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]
    else:
        ops = [{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
    guarded = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}, *ops] if rv else ops
    updated = await ctx.kube.patch_metadata(worker.namespace, worker.name, guarded)
    worker.wrote(updated, status if rv else None)
    ctx.health.note_write(updated)
    return resource_version(updated)


async def remove_finalizer(ctx: OperatorContext, worker: Worker) -> None:
    await patch_metadata(ctx, worker, finalizer_removal_ops(worker.body))


async def patch_metadata(ctx: OperatorContext, worker: Worker, ops: list[dict[str, Any]]) -> None:
    if not ops:
        return
    try:
        updated = await ctx.kube.patch_metadata(worker.namespace, worker.name, ops)
    except KubeError as exc:
        if exc.status == 404:
            return  # already gone
        raise
    worker.wrote(updated)
    ctx.health.note_write(updated)


def finalizer_removal_ops(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    finalizers = list(body.get("metadata", {}).get("finalizers") or [])
    if FINALIZER not in finalizers:
        return []
    path = f"/metadata/finalizers/{finalizers.index(FINALIZER)}"
    return [{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]


def label_ops(body: Mapping[str, Any], value: str | None) -> list[dict[str, Any]]:
    labels = body.get("metadata", {}).get("labels") or {}
    if labels.get(RESULT_LABEL) == value:
        return []
    path = "/metadata/labels/" + RESULT_LABEL.replace("~", "~0").replace("/", "~1")
    if value is None:
        return [{"op": "remove", "path": path}]
    if labels:
        return [{"op": "add", "path": path, "value": value}]
    return [{"op": "add", "path": "/metadata/labels", "value": {RESULT_LABEL: value}}]


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`; empty when they are equal."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before or key not in old:
            patch[key] = value
    return patch
