"""Leader election on a Lease, against an in-memory Lease store with an injected clock."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from publishing_operator.adapters.kube import KubeApi, KubeError
from publishing_operator.controller.leadership import LeaderElector
from tests.fixtures.clock import FakeClock


class FakeLeases(KubeApi):
    """One Lease, with resourceVersion conflicts as the API server has them."""

    def __init__(self) -> None:  # no HTTP client
        self.lease: dict[str, Any] | None = None
        self.rv = 0
        self.down = False

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.down:
            raise KubeError("GET lease: HTTP 503", 503)
        return copy.deepcopy(self.lease)

    async def create_lease(self, namespace: str, body: Any) -> dict[str, Any]:
        if self.lease is not None:
            raise KubeError("POST lease: HTTP 409", 409)
        return self._store(body)

    async def replace_lease(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        if self.down:
            raise KubeError("PUT lease: HTTP 503", 503)
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise KubeError("PUT lease: HTTP 409", 409)
        return self._store(body)

    def _store(self, body: Any) -> dict[str, Any]:
        self.rv += 1
        self.lease = copy.deepcopy(dict(body))
        self.lease["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.lease)


def elector(
    leases: FakeLeases, identity: str, clock: FakeClock, events: list[str], led: asyncio.Event | None = None
) -> LeaderElector:
    async def started() -> None:
        events.append(f"{identity} leads")
        if led is not None:
            led.set()

    async def stopped() -> None:
        events.append(f"{identity} stops")

    return LeaderElector(
        leases,
        namespace="ops",
        name="publishing-operator",
        identity=identity,
        on_started_leading=started,
        on_stopped_leading=stopped,
        monotonic=clock,
    )


async def step(e: LeaderElector) -> bool:
    """One round of the election loop, as `run` does it."""
    acquired = await e._try_acquire_or_renew()
    if acquired:
        e._last_renewed = e._monotonic()
        if not e.is_leader:
            e.is_leader = True
            await e._on_started()
    elif e.is_leader and e._monotonic() - e._last_renewed >= e.renew_deadline:
        await e._step_down("could not renew the lease in time")
    return acquired


async def test_the_first_candidate_leads_and_the_second_waits_for_expiry() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), []
    a, b = elector(leases, "a", clock, events), elector(leases, "b", clock, events)
    assert await step(a) and await step(a)  # created, then renewed
    assert not await step(b)
    clock.now += 14  # a stops renewing (dead); b has not seen a change for 14 s < 15 s
    assert not await step(b)
    clock.now += 2
    assert await step(b)
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "b"
    assert leases.lease["spec"]["leaseTransitions"] == 1
    assert events == ["a leads", "b leads"]


async def test_a_renewing_leader_is_never_taken_over() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), []
    a, b = elector(leases, "a", clock, events), elector(leases, "b", clock, events)
    await step(a)
    for _ in range(20):
        clock.now += 2
        assert await step(a)
        assert not await step(b)
    assert events == ["a leads"]


async def test_a_leader_that_cannot_renew_steps_down_before_the_lease_expires() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), []
    a = elector(leases, "a", clock, events)
    await step(a)
    leases.down = True
    clock.now += 9
    assert not await step(a) and a.is_leader  # within the renew deadline: still leading
    clock.now += 1  # 10 s without a renewal: the renew deadline, below the 15 s lease duration
    assert not await step(a)
    assert not a.is_leader and events == ["a leads", "a stops"]


async def test_stopping_releases_the_lease_for_an_immediate_hand_over() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), []
    led = asyncio.Event()
    a, b = elector(leases, "a", clock, events, led), elector(leases, "b", clock, events)
    stop = asyncio.Event()
    task = asyncio.create_task(a.run(stop))
    async with asyncio.timeout(10):
        await led.wait()
    stop.set()
    async with asyncio.timeout(10):
        await task
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == ""
    assert await step(b)  # no waiting for expiry
    assert events == ["a leads", "a stops", "b leads"]
