"""A worker: what the operator remembers about one live PublishingBuild between steps.

Memory is only a cache: the newest copy of the object, whether a start slot is awaited, a request
key this process just won, resolved credentials. Everything that matters lives in the status.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping, MutableMapping
from typing import Any

from pydantic import ValidationError

from publishing_operator import lifecycle as lc
from publishing_operator.adapters.events import ObjectRef
from publishing_operator.api import (
    FINALIZER,
    FINISHED_PHASES,
    RESULT_LABEL,
    RETRY_ANNOTATION,
    PublishingBuildSpec,
    PublishingBuildStatus,
)
from publishing_operator.credentials import ResolvedCredentials

log = logging.getLogger("publishing_operator.controller")

OWN_WRITES_REMEMBERED = 16  # our recent writes, whose watch echoes must not wake the worker


def new_own_writes() -> deque[str]:
    return deque(maxlen=OWN_WRITES_REMEMBERED)


def status_of(body: Mapping[str, Any]) -> PublishingBuildStatus:
    try:
        return PublishingBuildStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return PublishingBuildStatus()


def resource_version(body: Mapping[str, Any]) -> str:
    """Opaque (API conventions): compared for equality only, never ordered."""
    return str(body.get("metadata", {}).get("resourceVersion") or "")


def needs_work(body: Mapping[str, Any], status: PublishingBuildStatus) -> bool:
    """Does this object need a worker? Finished objects only for labels, finalizers, a retry, or a
    spec change to acknowledge (observedGeneration follows generation on every resource)."""
    meta = body.get("metadata", {})
    finalizers = meta.get("finalizers") or []
    if meta.get("deletionTimestamp"):
        return FINALIZER in finalizers
    if status.phase not in FINISHED_PHASES:
        return True
    retry = (meta.get("annotations") or {}).get(RETRY_ANNOTATION)
    label = (meta.get("labels") or {}).get(RESULT_LABEL)
    return (
        FINALIZER in finalizers
        or label != lc.result_label(status.phase)
        or (retry is not None and retry != status.retry_request)
        or lc.observed_generation_lags(status, generation_of(body))
    )


def generation_of(body: Mapping[str, Any]) -> int | None:
    generation = body.get("metadata", {}).get("generation")
    return generation if isinstance(generation, int) else None


class Worker:
    def __init__(self, body: Mapping[str, Any], own_writes: deque[str] | None = None) -> None:
        self.body: dict[str, Any] = dict(body)
        meta = self.body.get("metadata", {})
        self.ref = ObjectRef(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
        )
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.waiting_for_slot = False
        # A build or submission request key this process wrote (and won) and has not sent to EAS
        # yet: such a request needs no look-up first (after a restart, or any failure, it always does).
        self.fresh_key: str | None = None
        self.credential_failures = 0
        self.transient_failures = 0
        self.credentials: ResolvedCredentials | None = None
        # Kept by the pool beyond this worker's life: a late echo must not start a new worker.
        self._own_writes = own_writes if own_writes is not None else new_own_writes()
        self.log = WorkerLog(self)
        # Parsed once: the status per resourceVersion (a watch event and the step after it read the
        # same version), the spec per generation (it changes only with the generation).
        self._status: tuple[str, PublishingBuildStatus] | None = None
        self._spec: tuple[int, PublishingBuildSpec] | None = None
        self._status_json: tuple[PublishingBuildStatus, dict[str, Any]] | None = None

    @property
    def uid(self) -> str:
        return self.ref.uid

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    @property
    def name(self) -> str:
        return self.ref.name

    def status(self) -> PublishingBuildStatus:
        """The status of the newest copy (shared: never change it in place; the lifecycle copies)."""
        return self.status_of(self.body)

    def status_of(self, body: Mapping[str, Any]) -> PublishingBuildStatus:
        """The status of `body`, a copy of this worker's object, parsed once per resourceVersion."""
        rv = resource_version(body)
        cached = self._status
        if cached is not None and rv and cached[0] == rv:
            return cached[1]
        status = status_of(body)
        if rv:
            self._status = (rv, status)
        return status

    def spec(self) -> PublishingBuildSpec:
        """The spec of the newest copy, parsed once per generation (ValidationError if invalid)."""
        generation = generation_of(self.body)
        cached = self._spec
        if cached is not None and generation is not None and cached[0] == generation:
            return cached[1]
        spec = PublishingBuildSpec.model_validate(self.body.get("spec") or {})
        if generation is not None:
            self._spec = (generation, spec)
        return spec

    def update(self, body: Mapping[str, Any]) -> None:
        """A copy from the watch stream: newer than ours unless it is the echo of our own write."""
        rv = resource_version(body)
        if rv and (rv == resource_version(self.body) or rv in self._own_writes):
            return  # already seen through our write's response (or an older echo of one)
        self.body = dict(body)
        self.wake.set()

    def status_json(self, status: PublishingBuildStatus) -> dict[str, Any]:
        """`status.to_json()`, kept for the status this worker last wrote or parsed (the `before`
        of the next write's merge patch)."""
        cached = self._status_json
        if cached is not None and cached[0] is status:
            return cached[1]
        json = status.to_json()
        self._status_json = (status, json)
        return json

    def wrote(
        self,
        body: Mapping[str, Any],
        status: PublishingBuildStatus | None = None,
        status_json: dict[str, Any] | None = None,
    ) -> None:
        """The object as our own write left it (the write's response). `status`: what its status is,
        known without parsing, given only for a write guarded by the version its `before` was read
        at (nobody else can have changed the status in between)."""
        self.body = dict(body)
        rv = resource_version(body)
        if rv:
            self._own_writes.append(rv)
            if status is not None:
                self._status = (rv, status)
                if status_json is not None:
                    self._status_json = (status, status_json)

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


class WorkerLog(logging.LoggerAdapter[logging.Logger]):
    """Every line of a worker carries the resource, its build id, attempt and phase."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(log, {})
        self.worker = worker

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        w = self.worker
        status = w.body.get("status") or {}
        build = status.get("build") if isinstance(status, dict) else None
        kwargs["extra"] = {
            "namespace": w.namespace,
            "resource": w.name,
            "uid": w.uid,
            "phase": status.get("phase") if isinstance(status, dict) else None,
            "attempt": status.get("attempt") if isinstance(status, dict) else None,
            "build_id": build.get("id") if isinstance(build, dict) else None,
        }
        return msg, kwargs
