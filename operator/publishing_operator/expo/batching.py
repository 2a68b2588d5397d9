"""Coalesced polling: the builds one token follows are polled in batched requests.

A fleet of builds in flight polls Expo at their own jittered times. Each poll waits up to `linger`
seconds for others to join, then one `BuildsById` request (up to 50 aliased `builds.byId`
fields) answers them all: a fleet costs a few requests per poll interval instead of one per build.
One build's error comes back on that build alone (GraphQL errors carry the field's path); a
request that fails as a whole for a reason other than Expo being unavailable is retried one build
at a time, so one bad build never fails the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from publishing_operator.expo.errors import ErrorKind, ExpoError
from publishing_operator.expo.models import Build
from publishing_operator.expo.operations import MAX_BUILDS_PER_REQUEST

log = logging.getLogger("publishing_operator.expo")

FetchMany = Callable[[Sequence[str]], Awaitable[dict[str, Build | ExpoError]]]
FetchOne = Callable[[str], Awaitable[Build]]


class BuildPoller:
    def __init__(
        self,
        fetch_many: FetchMany,
        fetch_one: FetchOne,
        *,
        linger: float,
        max_batch: int = MAX_BUILDS_PER_REQUEST,
    ) -> None:
        self._fetch_many, self._fetch_one = fetch_many, fetch_one
        self._linger, self._max_batch = linger, max_batch
        self._waiting: dict[str, list[asyncio.Future[Build]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def get(self, build_id: str) -> Build:
        """The build as Expo sees it now (within `linger` seconds); raises its ExpoError."""
        future: asyncio.Future[Build] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(build_id, []).append(future)
        if len(self._waiting) >= self._max_batch or self._linger <= 0:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting:
            ids = list(self._waiting)[: self._max_batch]
            batch = {build_id: self._waiting.pop(build_id) for build_id in ids}
            task = asyncio.get_running_loop().create_task(self._send(batch), name="expo-build-poll")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: dict[str, list[asyncio.Future[Build]]]) -> None:
        ids = list(batch)
        try:
            try:
                results = (
                    await self._fetch_many(ids) if len(ids) > 1 else {ids[0]: await self._fetch_one(ids[0])}
                )
            except ExpoError as exc:
                if len(ids) == 1 or exc.kind in (ErrorKind.TRANSIENT, ErrorKind.AUTH):
                    raise  # Expo is unavailable or the token is refused: true for every build
                log.debug("batched build poll failed (%s); asking one build at a time", exc)
                results = dict[str, Build | ExpoError]()
                for build_id in ids:  # one request each, as without batching
                    try:
                        results[build_id] = await self._fetch_one(build_id)
                    except ExpoError as one:
                        results[build_id] = one
        except BaseException as exc:
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for build_id, futures in batch.items():
            result = results.get(build_id)
            for future in futures:
                if future.done():
                    continue  # its worker went away meanwhile
                if isinstance(result, Build):
                    future.set_result(result)
                else:
                    future.set_exception(
                        result or ExpoError("Expo did not answer for this build", operation="BuildsById")
                    )
