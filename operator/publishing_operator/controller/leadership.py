"""One active replica: leader election on a coordination.k8s.io Lease, as client-go's leaderelection.

The leader renews the Lease every `retry_period`; a standby takes it over only when it has seen no
renewal for `lease_duration` (measured on its own monotonic clock from when it last saw the record
change, so clocks need not agree). A leader that cannot renew within `renew_deadline` stops acting
before anyone else may start (renew_deadline < lease_duration). On a clean shutdown the leader
releases the Lease, so the standby takes over at once.

Leadership is an optimisation, not the safety net: two processes that both believe they lead (a
partition, a paused VM) still never start a build twice, because every create needs a request-key
claim whose status write was won (see controller/build_step.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from publishing_operator.adapters.kube import KubeApi, KubeError
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.restore import restore_limiter
from publishing_operator.controller.retention import RetentionLoop
from publishing_operator.controller.runtime import WorkerPool

log = logging.getLogger("publishing_operator.leadership")

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

Callback = Callable[[], Awaitable[None]]


def own_namespace() -> str:
    """Where the Lease lives by default: the pod's namespace (downward API or service account)."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError), open(SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as handle:
        return handle.read().strip() or "default"
    return "default"


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: KubeApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        on_started_leading: Callback,
        on_stopped_leading: Callback,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert retry_period < renew_deadline < lease_duration
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry_period = (
            lease_duration,
            renew_deadline,
            retry_period,
        )
        self._on_started, self._on_stopped = on_started_leading, on_stopped_leading
        self._monotonic = monotonic
        self.is_leader = False
        self._observed: tuple[Any, ...] | None = None  # (holder, renewTime, transitions) last seen
        self._observed_at = 0.0  # when the record last changed, on our clock
        self._last_renewed = 0.0

    @property
    def holder(self) -> str | None:
        return str(self._observed[0]) if self._observed and self._observed[0] else None

    async def run(self, stop: asyncio.Event) -> None:
        """Acquire, lead, renew; step down when renewals fail; release on stop."""
        try:
            while not stop.is_set():
                acquired = await self._try_acquire_or_renew()
                now = self._monotonic()
                if acquired:
                    self._last_renewed = now
                    if not self.is_leader:
                        self.is_leader = True
                        log.info("leader election: this replica (%s) leads now", self.identity)
                        await self._on_started()
                elif self.is_leader and now - self._last_renewed >= self.renew_deadline:
                    await self._step_down("could not renew the lease in time")
                await self._sleep(stop, self.retry_period * random.uniform(1.0, 1.2))
        finally:
            if self.is_leader:
                await self._step_down("shutting down")
                await self._release()

    async def _step_down(self, why: str) -> None:
        self.is_leader = False
        log.warning("leader election: this replica (%s) stops leading: %s", self.identity, why)
        await self._on_stopped()

    async def _try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        try:
            lease = await self.kube.get_lease(self.namespace, self.name)
            if lease is None:
                await self.kube.create_lease(self.namespace, self._record(None, now, transitions=0))
                return True
            spec = lease.get("spec") or {}
            record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
            if record != self._observed:
                self._observed, self._observed_at = record, self._monotonic()
            holder = spec.get("holderIdentity")
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            if holder and holder != self.identity and self._monotonic() - self._observed_at < duration:
                return False  # someone else holds it and renewed recently
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
            acquire = spec.get("acquireTime") if holder == self.identity else None
            body = self._record(lease, now, transitions=transitions, acquire_time=acquire)
            await self.kube.replace_lease(self.namespace, self.name, body)
            return True
        except KubeError as exc:
            if not exc.conflict:
                log.warning("leader election: %s", exc)
            return False

    def _record(
        self,
        lease: dict[str, Any] | None,
        now: datetime,
        *,
        transitions: int,
        acquire_time: str | None = None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": acquire_time or _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": transitions,
            },
        }

    async def _release(self) -> None:
        """Hand the Lease over at once (as client-go's ReleaseOnCancel): no holder, 1 s duration."""
        with contextlib.suppress(KubeError):
            lease = await self.kube.get_lease(self.namespace, self.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            body = self._record(
                lease, datetime.now(UTC), transitions=int(lease["spec"].get("leaseTransitions") or 0)
            )
            body["spec"]["holderIdentity"] = ""
            body["spec"]["leaseDurationSeconds"] = 1
            await self.kube.replace_lease(self.namespace, self.name, body)
            log.info("leader election: released the lease")

    @staticmethod
    async def _sleep(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


# -- what leading means for this operator ----------------------------------------------------------


async def lead(ctx: OperatorContext, pool: WorkerPool) -> None:
    """This replica acts: limiter state from status, workers for every resource, retention."""
    await restore_limiter(ctx)
    pool.active = True
    for namespace in ctx.settings.namespaces or (None,):
        for body in await ctx.kube.list_publishing_builds(namespace):
            pool.observe(body)
    if isinstance(ctx.retention, RetentionLoop):
        ctx.retention.start()


async def stand_by(ctx: OperatorContext, pool: WorkerPool) -> None:
    await pool.deactivate()
    ctx.limiter.clear()
    if isinstance(ctx.retention, RetentionLoop):
        await ctx.retention.stop()


@dataclass
class Leadership:
    elector: LeaderElector
    stop: asyncio.Event
    task: asyncio.Task[None]


def start_leader_election(ctx: OperatorContext, pool: WorkerPool) -> Leadership:
    config = ctx.settings
    elector = LeaderElector(
        ctx.kube,
        namespace=config.lease_namespace or own_namespace(),
        name=config.lease_name,
        identity=ctx.identity,
        on_started_leading=lambda: lead(ctx, pool),
        on_stopped_leading=lambda: stand_by(ctx, pool),
    )
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(elector.run(stop), name="leader-election")
    log.info(
        "leader election: lease %s/%s, this replica is %s (standby until it leads)",
        elector.namespace,
        elector.name,
        elector.identity,
    )
    return Leadership(elector, stop, task)
