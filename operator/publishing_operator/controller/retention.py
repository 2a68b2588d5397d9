"""History retention: finished PublishingBuilds are deleted by history limits and by their TTL.

Per namespace the newest `keep_succeeded` Succeeded and the newest `keep_failed` Failed or Cancelled
resources survive (Failed and Cancelled share one budget); "newest" orders by `status.completionTime`,
ties by `metadata.creationTimestamp`, then by name (the later name counts as newer). A limit of 0
keeps none, as a CronJob's history limit of 0 does. Independently, a finished resource whose
`spec.ttlSecondsAfterFinished` has passed since its completionTime is deleted (0 = at once), and
TTL deletions do not take a history slot: the limits count the survivors.

A resource is only ever a candidate when it is finished (phase in FINISHED_PHASES), has a
completionTime and is not being deleted already: running resources are never touched. An object
whose status does not parse is treated as running. The TTL is read from that one spec field, so a
resource that failed with InvalidSpec still honours it; an invalid TTL value means no TTL.

`plan_retention` is pure (explicit `now`); `run_retention_pass` lists, plans and deletes (uid
precondition, so a re-created namesake is never hit); `RetentionLoop` runs it periodically and wakes
early for the next TTL expiry or when `trigger()`ed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from publishing_operator.adapters.kube import KubeApi
from publishing_operator.api import FINISHED_PHASES, ObjectMeta, Phase, PublishingBuildStatus
from publishing_operator.clock import utc_now
from publishing_operator.settings import Settings

log = logging.getLogger(__name__)

RetentionReason = Literal["ttl", "history-succeeded", "history-failed"]

DEFAULT_INTERVAL = 60.0
MIN_WAIT = 1.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Deletion(BaseModel):
    """One finished resource the retention rules remove, and why (`message` is for humans and logs)."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    name: str
    uid: str
    reason: RetentionReason
    message: str


class _TtlSpec(BaseModel):
    """Only the field retention needs, so the rest of an invalid spec does not matter."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    ttl_seconds_after_finished: int | None = Field(None, ge=0, le=2147483647)


class _Finished(BaseModel):
    """A deletable finished resource, reduced to what the rules read."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    name: str
    uid: str
    phase: Phase
    completion_time: datetime
    creation_timestamp: datetime
    ttl_seconds: int | None

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Larger is newer."""
        return (self.completion_time, self.creation_timestamp, self.name)

    @property
    def expires_at(self) -> datetime | None:
        if self.ttl_seconds is None:
            return None
        return self.completion_time + timedelta(seconds=self.ttl_seconds)


def _finished(obj: Mapping[str, Any]) -> _Finished | None:
    """The resource as a retention candidate, or None when it must not be touched."""
    try:
        meta = ObjectMeta.model_validate(obj.get("metadata") or {})
        status = PublishingBuildStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        return None  # unreadable: treated as running
    if not (meta.namespace and meta.name and meta.uid) or meta.deletion_timestamp is not None:
        return None
    if status.phase not in FINISHED_PHASES or status.completion_time is None:
        return None
    spec = obj.get("spec")
    ttl: int | None = None
    if isinstance(spec, Mapping):
        with contextlib.suppress(ValidationError):
            ttl = _TtlSpec.model_validate(spec).ttl_seconds_after_finished
    return _Finished(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        phase=status.phase,
        completion_time=status.completion_time,
        creation_timestamp=meta.creation_timestamp or _EPOCH,
        ttl_seconds=ttl,
    )


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _candidates(objects: Iterable[Mapping[str, Any]]) -> list[_Finished]:
    return [c for c in (_finished(obj) for obj in objects) if c is not None]


def plan_retention(
    objects: Iterable[Mapping[str, Any]], *, now: datetime, keep_succeeded: int, keep_failed: int
) -> list[Deletion]:
    """The deletions the rules call for, TTL first, then per namespace oldest first (deterministic)."""
    return _plan(_candidates(objects), now=now, keep_succeeded=keep_succeeded, keep_failed=keep_failed)


def _plan(
    candidates: list[_Finished], *, now: datetime, keep_succeeded: int, keep_failed: int
) -> list[Deletion]:
    if keep_succeeded < 0 or keep_failed < 0:
        raise ValueError("history limits must be >= 0")
    deletions: list[Deletion] = []
    survivors: list[_Finished] = []
    for c in sorted(candidates, key=lambda c: (c.namespace, c.order)):
        expires = c.expires_at
        if expires is not None and expires <= now:
            deletions.append(
                Deletion(
                    namespace=c.namespace,
                    name=c.name,
                    uid=c.uid,
                    reason="ttl",
                    message=(
                        f"{c.phase.value} at {_stamp(c.completion_time)}; "
                        f"ttlSecondsAfterFinished={c.ttl_seconds} expired at {_stamp(expires)}"
                    ),
                )
            )
        else:
            survivors.append(c)

    groups: dict[tuple[str, bool], list[_Finished]] = defaultdict(list)
    for c in survivors:
        groups[(c.namespace, c.phase is Phase.SUCCEEDED)].append(c)
    for (namespace, succeeded), members in sorted(groups.items()):
        keep = keep_succeeded if succeeded else keep_failed
        reason: RetentionReason = "history-succeeded" if succeeded else "history-failed"
        kind = "Succeeded" if succeeded else "Failed/Cancelled"
        newest_first = sorted(members, key=lambda c: c.order, reverse=True)
        for c in reversed(newest_first[keep:]):
            deletions.append(
                Deletion(
                    namespace=namespace,
                    name=c.name,
                    uid=c.uid,
                    reason=reason,
                    message=(
                        f"{c.phase.value} at {_stamp(c.completion_time)}; namespace {namespace} has "
                        f"{len(members)} {kind} resources and keeps the newest {keep}"
                    ),
                )
            )
    return deletions


def next_ttl_expiry(objects: Iterable[Mapping[str, Any]], *, now: datetime) -> datetime | None:
    """The earliest TTL expiry still in the future, or None when no finished resource has one."""
    return _next_expiry(_candidates(objects), now=now)


def _next_expiry(candidates: list[_Finished], *, now: datetime) -> datetime | None:
    expiries = [expires for c in candidates if (expires := c.expires_at) is not None and expires > now]
    return min(expiries, default=None)


class RetentionPass(BaseModel):
    """What one pass deleted, and when the next TTL expires among what it kept."""

    model_config = ConfigDict(frozen=True)

    deleted: list[Deletion]
    next_expiry: datetime | None


BeforeDelete = Callable[[Mapping[str, Any]], Awaitable[None]]


async def run_retention_pass(
    kube: KubeApi,
    *,
    namespaces: tuple[str, ...],
    keep_succeeded: int,
    keep_failed: int,
    now: datetime,
    before_delete: BeforeDelete | None = None,
) -> RetentionPass:
    """List, plan, delete. A failed list raises; a failed delete is logged and retried next pass.

    `before_delete` sees each object about to be deleted (the release ledger records what shipped);
    if it fails, that object is kept for the next pass."""
    deleted: list[Deletion] = []
    next_expiry: datetime | None = None
    for namespace in namespaces or (None,):
        # Parsed once for both the plan and the next expiry: a pass runs on the operator's event loop.
        listed = await kube.list_publishing_builds(namespace)
        by_uid = {str((obj.get("metadata") or {}).get("uid")): obj for obj in listed}
        candidates = _candidates(listed)
        plan = _plan(candidates, now=now, keep_succeeded=keep_succeeded, keep_failed=keep_failed)
        for deletion in plan:
            extra = {"namespace": deletion.namespace, "resource": deletion.name, "uid": deletion.uid}
            try:
                if before_delete is not None:
                    await before_delete(by_uid[deletion.uid])
                await kube.delete_publishing_build(deletion.namespace, deletion.name, deletion.uid)
            except Exception as exc:  # one failed delete must not stop the others
                log.warning(
                    "retention: could not delete %s/%s (%s): %s; retried next pass",
                    deletion.namespace,
                    deletion.name,
                    deletion.reason,
                    exc,
                    extra=extra,
                )
                continue
            log.info(
                "retention: deleted %s/%s (%s): %s",
                deletion.namespace,
                deletion.name,
                deletion.reason,
                deletion.message,
                extra=extra,
            )
            deleted.append(deletion)
        expiry = _next_expiry(candidates, now=now)
        if expiry is not None and (next_expiry is None or expiry < next_expiry):
            next_expiry = expiry
    return RetentionPass(deleted=deleted, next_expiry=next_expiry)


class RetentionLoop:
    """Runs a retention pass every `interval` seconds, sooner for the next TTL expiry or a trigger.

    Errors are logged and the pass is retried at the next wake-up; the loop ends only when its stop
    event is set. `clock` gives "now" for the rules; waiting itself uses the event loop's time.
    """

    def __init__(
        self,
        kube: KubeApi,
        *,
        namespaces: tuple[str, ...] = (),
        keep_succeeded: int,
        keep_failed: int,
        interval: float = DEFAULT_INTERVAL,
        min_wait: float = MIN_WAIT,
        clock: Callable[[], datetime] = utc_now,
        before_delete: BeforeDelete | None = None,
    ) -> None:
        if keep_succeeded < 0 or keep_failed < 0:
            raise ValueError("history limits must be >= 0")
        self.kube = kube
        self.namespaces = namespaces
        self.keep_succeeded = keep_succeeded
        self.keep_failed = keep_failed
        self.interval = interval
        self.min_wait = min_wait
        self.clock = clock
        self.before_delete = before_delete
        self.passes = 0  # completed passes, failed or not (the retention probe reports these three)
        self.deleted_total = 0
        self.last_error: str | None = None
        self.last_next_expiry: datetime | None = None
        self._wake = asyncio.Event()
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._pass_done = asyncio.Condition()

    @classmethod
    def from_settings(cls, kube: KubeApi, settings: Settings, **kwargs: Any) -> RetentionLoop:
        return cls(
            kube,
            namespaces=settings.namespaces,
            keep_succeeded=settings.history_succeeded,
            keep_failed=settings.history_failed,
            **kwargs,
        )

    def trigger(self) -> None:
        """Run a pass soon (e.g. a resource just finished); triggers while a pass runs coalesce."""
        self._wake.set()

    async def run_once(self) -> RetentionPass:
        result = await run_retention_pass(
            self.kube,
            namespaces=self.namespaces,
            keep_succeeded=self.keep_succeeded,
            keep_failed=self.keep_failed,
            now=self.clock(),
            before_delete=self.before_delete,
        )
        self.deleted_total += len(result.deleted)
        self.last_next_expiry = result.next_expiry
        return result

    def _delay(self, next_expiry: datetime | None) -> float:
        delay = self.interval
        if next_expiry is not None:
            delay = min(delay, (next_expiry - self.clock()).total_seconds())
        return max(delay, self.min_wait)

    async def run(self, stop: asyncio.Event) -> None:
        """Pass, wait, repeat until `stop` is set."""
        while not stop.is_set():
            self._wake.clear()
            next_expiry: datetime | None = None
            try:
                next_expiry = (await self.run_once()).next_expiry
                self.last_error = None
            except Exception as exc:  # the loop must outlive API failures
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("retention pass failed, retried in %.0fs: %s", self._delay(None), self.last_error)
            async with self._pass_done:
                self.passes += 1
                self._pass_done.notify_all()
            await self._sleep(stop, self._delay(next_expiry))

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        """Until `seconds` pass, a trigger, or stop, whichever is first.

        Triggers count only after `min_wait`: a burst of finishing resources costs one list per
        `min_wait`, not one per resource.
        """
        floor = min(seconds, self.min_wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=floor)
        if stop.is_set() or seconds <= floor:
            return
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds - floor, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def wait_passes(self, count: int) -> None:
        """Until at least `count` passes have completed (callers bound it with their own timeout)."""
        async with self._pass_done:
            await self._pass_done.wait_for(lambda: self.passes >= count)

    # -- owning the task (what the operator's startup and cleanup use) ----------------------------

    def start(self) -> RetentionLoop:
        """Run in a background task of the current event loop; returns self for one-line wiring."""
        if self._task is None:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self.run(self._stop), name="history-retention")
        return self

    async def stop(self) -> None:
        """Stop after the current pass (a pass in progress is cancelled if it takes longer than 5 s)."""
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5.0)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
