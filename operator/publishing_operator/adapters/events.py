"""Kubernetes Events on PublishingBuilds, posted in the background in the order they were made.

A step never waits for an Event: `post()` queues it and one task writes it (core/v1 Event, the
shape `kubectl describe` shows). Events are helpful but auxiliary: a failed post is logged and
dropped, never retried forever and never fails the step. `close()` flushes what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from publishing_operator.adapters.kube import KubeApi, KubeError
from publishing_operator.api import API_VERSION, KIND

log = logging.getLogger(__name__)

COMPONENT = "publishing-operator"
MAX_MESSAGE_LENGTH = 1024  # what kube-apiserver accepts for an Event message
QUEUE_LIMIT = 10_000  # beyond this, an API outage drops the oldest Events rather than memory


@dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str
    uid: str


class EventSink(Protocol):
    def post(self, ref: ObjectRef, reason: str, message: str, *, warning: bool) -> None: ...


def shorten(message: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    if len(message) <= limit:
        return message
    half = (limit - 3) // 2
    return f"{message[:half]}...{message[-(limit - 3 - half) :]}"


def event_body(
    ref: ObjectRef, reason: str, message: str, *, warning: bool, now: datetime
) -> dict[str, object]:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": ref.namespace, "generateName": f"{COMPONENT}-"},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "namespace": ref.namespace,
            "name": ref.name,
            "uid": ref.uid,
        },
        "type": "Warning" if warning else "Normal",
        "reason": reason,
        "message": shorten(message),
        "source": {"component": COMPONENT},  # the "From" column of `kubectl describe`
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class KubeEvents:
    """The EventSink that writes through the Kubernetes API.

    A few senders post side by side (one round trip at a time each could not keep up with
    thousands of builds starting together: the Events trailed the builds by minutes); one object's
    Events always go through the same sender, so they are posted in the order they were made.
    """

    SENDERS = 4

    def __init__(self, kube: KubeApi) -> None:
        self._kube = kube
        self._queues: list[asyncio.Queue[dict[str, object]]] = [
            asyncio.Queue(maxsize=QUEUE_LIMIT // self.SENDERS) for _ in range(self.SENDERS)
        ]
        self._tasks: list[asyncio.Task[None] | None] = [None] * self.SENDERS

    def post(self, ref: ObjectRef, reason: str, message: str, *, warning: bool) -> None:
        body = event_body(ref, reason, message, warning=warning, now=datetime.now(UTC))
        shard = zlib.crc32(ref.uid.encode()) % self.SENDERS
        queue = self._queues[shard]
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
                queue.task_done()
            log.warning("too many Events waiting to be posted; dropped the oldest")
        queue.put_nowait(body)
        task = self._tasks[shard]
        if task is None or task.done():
            self._tasks[shard] = asyncio.get_running_loop().create_task(self._run(queue), name="events")

    async def _run(self, queue: asyncio.Queue[dict[str, object]]) -> None:
        while True:
            body = await queue.get()
            try:
                meta = body["metadata"]
                assert isinstance(meta, dict)
                await self._kube.create_event(str(meta["namespace"]), body)
            except KubeError as exc:
                log.warning("could not post Event %s: %s", body.get("reason"), exc)
            finally:
                queue.task_done()

    async def close(self, flush_for: float = 5.0) -> None:
        """Post what is queued (for at most `flush_for` seconds), then stop."""
        tasks = [task for task in self._tasks if task is not None]
        if not tasks:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues)), timeout=flush_for)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
