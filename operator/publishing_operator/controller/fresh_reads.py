"""Coalesced reads that are never staler than a read of one's own.

Many resources read the same object at the same moment (a burst of new PublishingBuilds on one
token Secret, each reading the release ledger): one GET can answer all of them. A caller may only
share a read that *started after it asked*, so what it sees is at least as fresh as a GET of its
own (a Secret fixed a moment ago is seen, as without coalescing). While a read of a key is in
flight, the callers that arrive meanwhile wait for one more read, which starts when that one ends
and answers all of them: at most two reads per key at a time, whatever the number of callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Read(Generic[V]):
    def __init__(self) -> None:
        self.future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self.started = False  # set as the read begins: who asks later waits for the next one
        self.task: asyncio.Future[V] | None = None  # held here: a task nobody references may vanish


class FreshReads(Generic[K, V]):
    def __init__(self, fetch: Callable[[K], Awaitable[V]]) -> None:
        self._fetch = fetch
        self._running: dict[K, _Read[V]] = {}  # answers those who asked before it started
        self._next: dict[K, _Read[V]] = {}  # starts when the running one ends

    async def get(self, key: K) -> V:
        read = self._next.get(key)
        if read is None:
            running = self._running.get(key)
            if running is None:
                read = self._start(key, _Read())
            elif not running.started:
                read = running  # scheduled, not sent yet: as fresh as a read of one's own
            else:
                read = self._next[key] = _Read()
        # One caller giving up (cancelled) must not cancel the read the others wait for.
        return await asyncio.shield(read.future)

    def _start(self, key: K, read: _Read[V]) -> _Read[V]:
        self._running[key] = read

        async def fetch() -> V:
            read.started = True
            return await self._fetch(key)

        def done(finished: asyncio.Future[V]) -> None:
            if self._running.get(key) is read:
                del self._running[key]
            future = read.future
            if not future.done():
                if finished.cancelled():
                    future.cancel()
                elif (exc := finished.exception()) is not None:
                    future.set_exception(exc)
                else:
                    future.set_result(finished.result())
            if not future.cancelled():
                future.exception()  # retrieved: an error nobody waits for any more is not logged as lost
            queued = self._next.pop(key, None)
            if queued is not None:
                self._start(key, queued)

        read.task = asyncio.ensure_future(fetch())
        read.task.add_done_callback(done)
        return read
