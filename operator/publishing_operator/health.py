"""Liveness and readiness: is the operator still doing its job, not only still running?

kopf's liveness endpoint answers 200 as long as its health task runs, and a probe handler can only
make it fail by raising (an HTTP 500 after kopf logs a handler failure). So the operator serves its
own probes (`serve_health`, on HEALTH_PORT) from this module's verdicts:

- liveness, `/healthz`: 503 when
  * the watch stream is stuck: a write of the operator to a PublishingBuild has not come back as a
    watch event within `watch_echo_timeout`. Every write makes the API server send a watch event
    (kopf may fold several into the latest, whose resourceVersion is at least the write's), so the
    operator's own writes are the heartbeat, and a quiet cluster without writes has nothing to miss.
    kopf reconnects a silent stream after 70 s and re-lists after a 410, so minutes without the
    echo mean the stream or kopf's event processing is wedged; a restart re-lists everything.
  * a worker is stuck: one reconcile step has run longer than `step_timeout` (every call inside a
    step has its own timeout, so a step that outlives them all hangs and its resource stops moving).
  * the event loop itself is blocked: then nothing answers and the probe's own timeout fails it.
- readiness, `/readyz`: 200 once kopf's startup handlers have finished (logged in, limiter restored)
  and until shutdown begins; the metrics Service routes to ready pods.

Pure logic over an injected monotonic clock; the HTTP part is `serve_health` at the end.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from publishing_operator.httpserve import HttpServer, serve_http

log = logging.getLogger("publishing_operator.health")

WATCH_ECHO_TIMEOUT = 300.0  # seconds: kopf's 70 s inactivity reconnect and a re-list, with room to spare
STEP_TIMEOUT = 900.0  # seconds: the longest legitimate step (an archive upload, retried) takes minutes


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    detail: str


class Verdict(BaseModel):
    """A probe's answer: ok only when every check is. Details carry numbers, never resource names;
    `info` says what the operator is doing (circuit state, workers, leadership), for a human."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    checks: dict[str, Check]
    info: dict[str, str | int] = {}

    @classmethod
    def of(cls, info: dict[str, str | int] | None = None, **checks: Check) -> Verdict:
        return cls(ok=all(c.ok for c in checks.values()), checks=checks, info=info or {})


class HealthSnapshot(BaseModel):
    """Numbers for metrics (read at scrape time)."""

    model_config = ConfigDict(frozen=True)

    ready: bool
    watch_events: int  # watch events seen since start
    unechoed_writes: int  # writes whose watch event has not arrived yet
    echo_lag_seconds: float  # age of the oldest of them (0: none)
    steps_running: int
    longest_step_seconds: float  # age of the longest running step (0: none)


class Health:
    def __init__(
        self,
        *,
        watch_echo_timeout: float = WATCH_ECHO_TIMEOUT,
        step_timeout: float = STEP_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watch_echo_timeout = watch_echo_timeout
        self.step_timeout = step_timeout
        self._clock = clock
        self._ready = False
        self._stopping = False
        self._watch_events = 0
        self._pending: dict[str, tuple[float, int]] = {}  # uid -> (first unechoed write, writes)
        self._seen: dict[str, str] = {}  # uid -> resourceVersion of its latest watch event
        self._steps: dict[int, float] = {}  # step token -> start time
        self._tokens = itertools.count()
        self._info: dict[str, Callable[[], str | int]] = {}

    # -- what the operator reports -----------------------------------------------------------------

    def add_info(self, name: str, source: Callable[[], str | int]) -> None:
        """Show `source()` under `info.<name>` in every probe answer (it never decides one)."""
        self._info[name] = source

    def note_ready(self) -> None:
        """Startup finished: the operator takes work (readiness goes up)."""
        self._ready = True

    def note_stopping(self) -> None:
        """Shutdown began (readiness goes down; liveness stays up while running steps finish)."""
        self._stopping = True

    def note_watch_event(self, body: Mapping[str, Any]) -> None:
        """Every watch event of a PublishingBuild (listing, ADDED, MODIFIED, DELETED): its object.

        Any event of an object after a write echoes that write: resourceVersions are opaque (no
        ordering), kopf may fold a burst of events into the latest, and the stream is ordered."""
        self._watch_events += 1
        uid, rv = _identity(body)
        if uid:
            self._pending.pop(uid, None)
            self._seen[uid] = rv

    def note_write(self, body: Mapping[str, Any]) -> None:
        """The object the API server returned for a write of the operator (status or metadata patch)."""
        uid, rv = _identity(body)
        if not uid or (rv and self._seen.get(uid) == rv):
            return  # its event already came: the watch can beat the write's response
        first, count = self._pending.get(uid, (self._clock(), 0))
        self._pending[uid] = (first, count + 1)

    def forget(self, uid: str) -> None:
        """The object is gone (its DELETED event was seen): nothing of it is awaited or kept."""
        self._pending.pop(uid, None)
        self._seen.pop(uid, None)

    def note_step_started(self) -> int:
        """A worker began one reconcile step; pass the token to `note_step_finished`."""
        token = next(self._tokens)
        self._steps[token] = self._clock()
        return token

    def note_step_finished(self, token: int) -> None:
        self._steps.pop(token, None)

    @contextmanager
    def step(self) -> Iterator[None]:
        """`with health.step(): await worker.step_safely()`: the step is timed while it runs."""
        token = self.note_step_started()
        try:
            yield
        finally:
            self.note_step_finished(token)

    # -- verdicts ----------------------------------------------------------------------------------

    def liveness(self) -> Verdict:
        now = self._clock()
        return Verdict.of(self._read_info(), watch=self._watch_check(now), workers=self._workers_check(now))

    def readiness(self) -> Verdict:
        if self._stopping:
            started = Check(ok=False, detail="shutting down")
        elif not self._ready:
            started = Check(ok=False, detail="starting: startup handlers have not finished")
        else:
            started = Check(ok=True, detail="started")
        return Verdict.of(self._read_info(), started=started)

    def _read_info(self) -> dict[str, str | int]:
        info: dict[str, str | int] = {}
        for name, source in self._info.items():
            try:
                info[name] = source()
            except Exception:  # a broken info source must not fail a probe
                log.exception("health: reading %s failed", name)
                info[name] = "unknown"
        return info

    def snapshot(self) -> HealthSnapshot:
        now = self._clock()
        oldest_write = min((first for first, _ in self._pending.values()), default=now)
        oldest_step = min(self._steps.values(), default=now)
        return HealthSnapshot(
            ready=self._ready and not self._stopping,
            watch_events=self._watch_events,
            unechoed_writes=sum(count for _, count in self._pending.values()),
            echo_lag_seconds=max(0.0, now - oldest_write),
            steps_running=len(self._steps),
            longest_step_seconds=max(0.0, now - oldest_step),
        )

    def _watch_check(self, now: float) -> Check:
        if not self._pending:
            return Check(ok=True, detail=f"every write seen back on the watch ({self._watch_events} events)")
        lag = now - min(first for first, _ in self._pending.values())
        writes = sum(count for _, count in self._pending.values())
        detail = (
            f"{writes} write(s) not seen on the watch yet, the oldest {lag:.0f}s ago"
            f" (limit {self.watch_echo_timeout:.0f}s)"
        )
        return Check(ok=lag <= self.watch_echo_timeout, detail=detail)

    def _workers_check(self, now: float) -> Check:
        if not self._steps:
            return Check(ok=True, detail="no step running")
        longest = now - min(self._steps.values())
        detail = (
            f"{len(self._steps)} step(s) running, the longest for {longest:.0f}s"
            f" (limit {self.step_timeout:.0f}s)"
        )
        return Check(ok=longest <= self.step_timeout, detail=detail)


def _identity(body: Mapping[str, Any]) -> tuple[str, str]:
    """uid and resourceVersion (opaque: compared for equality only)."""
    meta = body.get("metadata")
    if not isinstance(meta, Mapping):
        return "", ""
    return str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")


# -- the probe endpoints -----------------------------------------------------------------------------


def _answer(verdict: Verdict) -> web.Response:
    return web.json_response(verdict.model_dump(mode="json"), status=200 if verdict.ok else 503)


@asynccontextmanager
async def serve_health(health: Health, port: int, host: str = "0.0.0.0") -> AsyncIterator[HttpServer | None]:
    """`/healthz` (liveness) and `/readyz` (readiness) while the block runs; port 0: off (None)."""

    async def liveness(_: web.Request) -> web.Response:
        verdict = health.liveness()
        if not verdict.ok:
            log.warning("liveness check failing: %s", _failures(verdict))
        return _answer(verdict)

    async def readiness(_: web.Request) -> web.Response:
        return _answer(health.readiness())

    async with serve_http({"/healthz": liveness, "/readyz": readiness}, port, host, what="health") as server:
        yield server


def _failures(verdict: Verdict) -> str:
    return "; ".join(f"{name}: {c.detail}" for name, c in verdict.checks.items() if not c.ok)
