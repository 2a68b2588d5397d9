"""The worker runtime: one level-triggered worker per live PublishingBuild.

The watch stream (handlers.py) hands every event to `WorkerPool.observe`: it refreshes the
resource's worker, or starts one when the resource needs work. A worker steps (step.py), then waits
for its next poll, a watch event, or the limiter's wake-up when a start slot frees; it exits when
its resource needs nothing more. At most `max_concurrent_steps` steps run at once, so a restart
that finds thousands of resources does not stampede the API servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from publishing_operator import lifecycle as lc
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.step import step
from publishing_operator.controller.worker import (
    Worker,
    needs_work,
    new_own_writes,
    resource_version,
    status_of,
)
from publishing_operator.redaction import SCRUBBER

log = logging.getLogger("publishing_operator.controller")
STEPS_PER_TURN = 3  # a bound on one turn: a won claim and its create are two steps


class WorkerPool:
    def __init__(self, ctx: OperatorContext, *, max_concurrent_steps: int) -> None:
        self.ctx = ctx
        self.workers: dict[str, Worker] = {}
        self.stopping = False
        # Workers run only while this replica leads (leadership.py); a standby only watches.
        self.active = True
        self._steps = asyncio.Semaphore(max_concurrent_steps)
        # Per uid, the resourceVersions of our own recent writes: their watch echoes start nothing.
        self._own_writes: dict[str, deque[str]] = {}

    def __len__(self) -> int:
        return len(self.workers)

    def unsent_keys(self) -> set[str]:
        """Request keys claimed by this process with no create sent yet."""
        return {worker.fresh_key for worker in self.workers.values() if worker.fresh_key}

    def live_objects(self) -> list[Mapping[str, Any]]:
        """The newest copy of every resource being worked on."""
        return [worker.body for worker in self.workers.values()]

    def observe(self, body: Mapping[str, Any]) -> None:
        """A watch event: refresh the worker's copy of the object, or start a worker if needed."""
        self.ctx.health.note_watch_event(body)
        uid = str(body.get("metadata", {}).get("uid", ""))
        if not uid:
            return
        worker = self.workers.get(uid)
        if worker is not None:
            # Parsed once per version: the echo of our own write, or the version the next step reads.
            self.ctx.metrics.phases.observe(body, worker.status_of(body))
            worker.update(body)
            return
        status = status_of(body)
        self.ctx.metrics.phases.observe(body, status)
        own = self._own_writes.get(uid)
        if own is not None and resource_version(body) in own:
            return  # the late echo of a write this process made (and has already seen)
        if self.active and not self.stopping and needs_work(body, status):
            self._start(body)

    def forget(self, body: Mapping[str, Any]) -> None:
        """The object is gone from the API."""
        uid = str(body.get("metadata", {}).get("uid", ""))
        self.ctx.metrics.phases.discard(uid)
        self.ctx.health.forget(uid)
        self._own_writes.pop(uid, None)
        worker = self.workers.pop(uid, None)
        if worker is not None:
            worker.stop()
        SCRUBBER.forget(uid)
        # Leave the limiter's queue (a Queued resource) or free its in-flight slot.
        status = status_of(body)
        key = status.build.request_key if status.build and status.build.request_key else None
        self.ctx.limiter.forget(key or lc.next_build_key(uid, status))

    def wake_waiting(self, keys: Iterable[str] | None = None) -> None:
        """Start slots freed: wake the workers whose keys the limiter says can take one now (the first
        waiters, FIFO), or every waiting worker when it does not say. Waking them all would make
        every waiter ask again, and be denied again, for each slot that frees (quadratic with
        thousands queued behind MAX_IN_FLIGHT)."""
        if keys is None:
            chosen: Iterable[Worker | None] = list(self.workers.values())
        else:
            chosen = [self.workers.get(key.rsplit(".", 1)[0]) for key in keys]  # keys are <uid>.<n>
        for worker in chosen:
            if worker is not None and worker.waiting_for_slot:
                worker.wake.set()

    async def deactivate(self) -> None:
        """Leadership lost: stop every worker now (what they were doing resumes from status on
        whichever replica leads next) and start no new ones."""
        self.active = False
        workers = list(self.workers.values())
        for worker in workers:
            worker.stop()
        for worker in workers:
            if worker.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
        self.workers.clear()

    async def shutdown(self, grace: float) -> list[str]:
        """No new steps; running steps get `grace` seconds to finish. Returns the resources that
        were in progress (resumed from their status at the next start)."""
        self.stopping = True
        in_progress = sorted(f"{w.namespace}/{w.name}" for w in self.workers.values())
        tasks = [w.task for w in self.workers.values() if w.task is not None and not w.task.done()]
        for worker in self.workers.values():
            worker.wake.set()  # idle workers leave at once; busy ones after their current step
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "shutdown: %d step(s) did not finish within %.0fs; the next start resumes them",
                    len(pending),
                    grace,
                )
        return in_progress

    def _start(self, body: Mapping[str, Any]) -> None:
        uid = str(body["metadata"]["uid"])
        own = self._own_writes.setdefault(uid, new_own_writes())
        worker = self.workers[uid] = Worker(body, own)
        # An empty context: the task outlives the kopf handler that starts it, and would otherwise
        # keep that handler's context variables (kopf's cause: the whole watched object, its patch
        # and loggers) alive with it, a second copy of every resource for as long as it is in flight.
        worker.task = asyncio.get_running_loop().create_task(
            self._run(worker), name=f"pb/{worker.namespace}/{worker.name}", context=contextvars.Context()
        )

    async def _run(self, worker: Worker) -> None:
        try:
            while not self.stopping:
                delay = await self._turn(worker)
                if delay is None:
                    if worker.wake.is_set():
                        continue  # something changed while we worked: look again before leaving
                    return
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):  # no extra task per waiting worker
                            await worker.wake.wait()
        finally:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]
                SCRUBBER.forget(worker.uid)

    async def _turn(self, worker: Worker) -> float | None:
        """A step, holding one of the places for concurrent steps; a step that has just won a request
        key (its claim) keeps the place for the create that follows. Queued again behind every other
        resource waiting for a place (thousands after a restart), the claim aged past the send
        deadline and had to be renewed: one more write per build."""
        async with self._steps:
            delay: float | None = 0
            for _ in range(STEPS_PER_TURN):
                if self.stopping:
                    break
                worker.wake.clear()
                with self.ctx.health.step():
                    delay = await step(self.ctx, worker)
                if delay != 0 or worker.fresh_key is None:
                    break
            return delay
