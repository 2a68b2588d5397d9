"""Coalesced reads (controller/fresh_reads.py): shared, and never staler than a read of one's own."""

from __future__ import annotations

import asyncio

import pytest

from publishing_operator.controller.fresh_reads import FreshReads


class Source:
    """A value that changes on demand; each read returns what it held when the read *started*."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def fetch(self, key: str) -> tuple[str, int]:
        self.reads += 1
        seen = self.value
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return key, seen


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_at_the_same_moment_share_one_read() -> None:
    source = Source()
    reads = FreshReads(source.fetch)
    callers = [asyncio.create_task(reads.get("token")) for _ in range(50)]
    await settle()
    source.release.set()
    assert await asyncio.gather(*callers) == [("token", 0)] * 50
    assert source.reads == 1


async def test_a_caller_arriving_during_a_read_gets_a_read_that_started_after_it_asked() -> None:
    source = Source()
    reads = FreshReads(source.fetch)
    early = asyncio.create_task(reads.get("token"))
    await settle()
    source.value = 1  # the Secret is fixed while the first read is in flight
    late = [asyncio.create_task(reads.get("token")) for _ in range(10)]
    await settle()
    assert source.reads == 1  # the late callers wait for the next read, not this one
    source.release.set()
    assert await early == ("token", 0)
    assert await asyncio.gather(*late) == [("token", 1)] * 10
    assert source.reads == 2  # ten late callers, one more read


async def test_keys_are_read_apart_and_each_read_ends_its_entry() -> None:
    source = Source()
    source.release.set()
    reads = FreshReads(source.fetch)
    assert await asyncio.gather(reads.get("a"), reads.get("b")) == [("a", 0), ("b", 0)]
    source.value = 2
    assert await reads.get("a") == ("a", 2)  # nothing is cached after a read ends
    assert source.reads == 3


async def test_an_error_reaches_every_caller_of_that_read_and_the_next_read_is_fresh() -> None:
    source = Source()
    reads = FreshReads(source.fetch)
    source.fail = RuntimeError("API down")
    callers = [asyncio.create_task(reads.get("token")) for _ in range(3)]
    await settle()
    source.release.set()
    for caller in callers:
        with pytest.raises(RuntimeError, match="API down"):
            await caller
    source.fail = None
    assert await reads.get("token") == ("token", 0)


async def test_a_caller_that_gives_up_does_not_cancel_the_read_of_the_others() -> None:
    source = Source()
    reads = FreshReads(source.fetch)
    quitter = asyncio.create_task(reads.get("token"))
    stayer = asyncio.create_task(reads.get("token"))
    await settle()
    quitter.cancel()
    await settle()
    source.release.set()
    assert await stayer == ("token", 0)
    assert quitter.cancelled()
