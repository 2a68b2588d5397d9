"""Coalesced polling: polls of one token's builds share requests; one build's trouble stays its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from publishing_operator.expo.batching import BuildPoller
from publishing_operator.expo.errors import ErrorKind, ExpoError, make_error
from publishing_operator.expo.models import Build


def build(build_id: str) -> Build:
    return Build.model_validate(
        {
            "id": build_id,
            "status": "IN_PROGRESS",
            "platform": "IOS",
            "createdAt": datetime(2026, 11, 29, tzinfo=UTC).isoformat(),
            "app": {"id": "a", "slug": "app", "ownerAccount": {"id": "o", "name": "owner"}},
        }
    )


class FakeExpo:
    def __init__(self, *, broken: set[str] = frozenset(), down: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.broken, self.down = broken, down

    def _error(self, build_id: str) -> ExpoError:
        return make_error(ErrorKind.USER, f"Build with id {build_id} not found", operation="BuildsById")

    async def many(self, ids: Sequence[str]) -> dict[str, Build | ExpoError]:
        self.batches.append(list(ids))
        if self.down:
            raise make_error(ErrorKind.TRANSIENT, "Expo answered HTTP 503", operation="BuildsById")
        if self.broken & set(ids):  # Expo's non-null fields turn one error into a failed request
            raise self._error(sorted(self.broken & set(ids))[0])
        return {build_id: build(build_id) for build_id in ids}

    async def one(self, build_id: str) -> Build:
        self.singles.append(build_id)
        if self.down:
            raise make_error(ErrorKind.TRANSIENT, "Expo answered HTTP 503", operation="BuildById")
        if build_id in self.broken:
            raise self._error(build_id)
        return build(build_id)


async def test_polls_within_the_linger_share_one_request() -> None:
    expo = FakeExpo()
    poller = BuildPoller(expo.many, expo.one, linger=0.05)
    found = await asyncio.gather(*(poller.get(f"b{i}") for i in range(20)))
    assert [b.id for b in found] == [f"b{i}" for i in range(20)]
    assert expo.batches == [[f"b{i}" for i in range(20)]] and expo.singles == []


async def test_a_batch_is_at_most_max_batch_builds() -> None:
    expo = FakeExpo()
    poller = BuildPoller(expo.many, expo.one, linger=10.0, max_batch=4)
    async with asyncio.timeout(5):  # full batches go at once, without waiting for the linger
        await asyncio.gather(*(poller.get(f"b{i}") for i in range(8)))
    assert [len(batch) for batch in expo.batches] == [4, 4]


async def test_one_bad_build_fails_alone() -> None:
    expo = FakeExpo(broken={"b3"})
    poller = BuildPoller(expo.many, expo.one, linger=0.05)
    results = await asyncio.gather(*(poller.get(f"b{i}") for i in range(5)), return_exceptions=True)
    assert [r.id if isinstance(r, Build) else "error" for r in results] == ["b0", "b1", "b2", "error", "b4"]
    assert isinstance(results[3], ExpoError) and "b3" in str(results[3])
    assert len(expo.batches) == 1 and sorted(expo.singles) == [f"b{i}" for i in range(5)]


async def test_expo_down_fails_every_poll_without_a_request_each() -> None:
    expo = FakeExpo(down=True)
    poller = BuildPoller(expo.many, expo.one, linger=0.05)
    results = await asyncio.gather(*(poller.get(f"b{i}") for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, ExpoError) and r.is_transient for r in results)
    assert len(expo.batches) == 1 and expo.singles == []  # no storm of single requests


async def test_the_same_build_polled_twice_is_asked_once() -> None:
    expo = FakeExpo()
    poller = BuildPoller(expo.many, expo.one, linger=0.05)
    first, second = await asyncio.gather(poller.get("b1"), poller.get("b1"))
    assert first.id == second.id == "b1"
    assert expo.singles == ["b1"] and expo.batches == []


async def test_a_cancelled_poll_does_not_break_the_others() -> None:
    expo = FakeExpo()
    poller = BuildPoller(expo.many, expo.one, linger=0.05)
    gone = asyncio.ensure_future(poller.get("b0"))
    stays = asyncio.ensure_future(poller.get("b1"))
    await asyncio.sleep(0)
    gone.cancel()
    assert (await stays).id == "b1"
    with pytest.raises(asyncio.CancelledError):
        await gone
