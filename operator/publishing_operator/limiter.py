"""The global build-start limiter: at most `rate` starts per sliding `window`, optionally at most
`max_in_flight` builds running at once, shared by every resource the process handles.

It never blocks. A handler asks `try_acquire(key)` and gets a `Grant` (start now) or a `Denial`
(stay Queued, retry at `denial.retry_at`). Waiting keys form a FIFO: when slots free, the longest
waiting key gets the first one, so no resource starves; a waiter that stops asking (its resource
was deleted, its handler died) is dropped after a grace, so no slot is held for it for ever.

Keys: use the build's request key (`<uid>.<attempt>`). A re-run of the same attempt (after a
crash or a handler retry) then re-acquires its own grant instead of consuming a second slot, while
a new attempt counts as a new start.

Time is wall-clock seconds since the epoch from an injected clock (default `time.time`), the same
scale as the timestamps kept in resource status, so `restore()` can take them as they are and
`Denial.retry_at` converts to a datetime for status.

Concurrency: made for one asyncio event loop. No method awaits, so each call is atomic with
respect to the other coroutines of that loop; it is not thread-safe.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from publishing_operator.durations import format_duration

log = logging.getLogger(__name__)

Clock = Callable[[], float]
SlotFreeCallback = Callable[[Sequence[str]], None]

# How long a key waits from its first denied request to its grant: nothing when starts are free,
# seconds to minutes behind the rate window, hours behind a long queue.
WAIT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)


class LimitReason(StrEnum):
    """Why a start was refused; the values double as condition reasons."""

    RATE_LIMITED = "RateLimited"
    MAX_IN_FLIGHT = "MaxInFlight"


class Grant(BaseModel):
    """Permission to start now. `reacquired` is True when the key already held this grant."""

    model_config = ConfigDict(frozen=True)

    key: str
    started_at: float | None  # None only for an in-flight key restored without a start time
    reacquired: bool = False


class Denial(BaseModel):
    """No slot now. `position` is 1-based in the FIFO of waiters; `retry_at` is the earliest
    time a slot can be this key's (an estimate when the in-flight cap is what blocks)."""

    model_config = ConfigDict(frozen=True)

    key: str
    reason: LimitReason
    retry_at: float
    now: float
    position: int
    waiters: int
    # For status: what blocks. Not the position: a waiter's status must not change on every start
    # ahead of it (the position is in `position` for logs).
    message: str

    @property
    def retry_after(self) -> timedelta:
        return timedelta(seconds=max(0.0, self.retry_at - self.now))

    @property
    def retry_at_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.retry_at, tz=UTC)


class WaitStats(BaseModel):
    """How long granted keys waited for their slot, since the limiter was made: the raw numbers of a
    histogram (cumulative counts per upper bound, total count and sum), ready for exposition."""

    model_config = ConfigDict(frozen=True)

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # grants that waited at most bounds[i] seconds
    count: int  # every new start granted, waited or not
    sum: float  # seconds waited, all grants together


class LimiterSnapshot(BaseModel):
    """Numbers for metrics and logs."""

    model_config = ConfigDict(frozen=True)

    rate: int
    window_seconds: float
    max_in_flight: int  # 0 = unlimited
    starts_in_window: int
    in_flight: int
    waiters: int
    free_slots: int  # slots a waiter could take right now (rate and in-flight cap together)
    oldest_wait_seconds: float  # how long the longest waiting key has waited (0: no waiter)
    last_grant_at: float  # when the last new start was granted (the limiter's creation before any)
    waits: WaitStats


@dataclass
class _Waiter:
    first_asked: float
    last_asked: float
    told_retry_at: float

    def expires_at(self, grace: float) -> float:
        # Counted from the later of its last request and the time we told it to come back, so a
        # waiter told to retry far in the future is not dropped while it obeys.
        return max(self.last_asked, self.told_retry_at) + grace


class StartLimiter:
    def __init__(
        self,
        rate: int,
        window: timedelta | float,
        max_in_flight: int = 0,
        clock: Clock = time.time,
        *,
        stale_after: timedelta | float | None = None,
        in_flight_poll: timedelta | float = 30.0,
    ) -> None:
        """`rate` starts per sliding `window`; `max_in_flight` 0 = unlimited. A waiter that has
        not asked again `stale_after` (default 2 x window) past its retry time is dropped.
        `in_flight_poll` is the retry delay given when only the in-flight cap blocks (its next
        free time is unknown; `on_slot_free` callbacks fire when it frees)."""
        if rate < 1:
            raise ValueError("rate must be at least 1")
        if max_in_flight < 0:
            raise ValueError("max_in_flight must be 0 (unlimited) or more")
        self.rate = rate
        self.window = _seconds(window)
        if self.window <= 0:
            raise ValueError("window must be longer than zero")
        self.max_in_flight = max_in_flight
        self.stale_after = 2 * self.window if stale_after is None else _seconds(stale_after)
        self.in_flight_poll = _seconds(in_flight_poll)
        self._clock = clock
        self._starts: dict[str, float] = {}  # key -> start time, only starts inside the window
        self._in_flight: dict[str, float | None] = {}  # key -> start time (None: unknown)
        self._waiters: dict[str, _Waiter] = {}  # insertion order is the FIFO order
        self._callbacks: list[SlotFreeCallback] = []
        self._wait_counts = [0] * len(WAIT_BUCKETS)  # per bucket, not cumulative
        self._last_grant_at = clock()
        self._wait_count = 0
        self._wait_sum = 0.0

    # -- asking for a slot ---------------------------------------------------------------------

    def try_acquire(self, key: str) -> Grant | Denial:
        """Grant a start now or say when to ask again. Never blocks."""
        now = self._clock()
        self._prune(now)
        held = self._held(key)
        if held is not None:
            return held

        waiter = self._waiters.get(key)
        if waiter is None:
            waiter = self._waiters[key] = _Waiter(first_asked=now, last_asked=now, told_retry_at=now)
        waiter.last_asked = now
        index = list(self._waiters).index(key)

        # Each waiter ahead has one free slot reserved for it; this key may take the next one.
        if index < self._free_rate() and index < self._free_in_flight():
            del self._waiters[key]
            self._starts[key] = now
            self._in_flight[key] = now
            self._record_wait(now - waiter.first_asked)
            return Grant(key=key, started_at=now)

        retry_at, reason = self._estimate(index, now)
        waiter.told_retry_at = retry_at
        if reason is LimitReason.MAX_IN_FLIGHT:
            blocked = f"{self.max_in_flight} builds in flight (the in-flight cap)"
        else:
            window = format_duration(timedelta(seconds=self.window))
            blocked = f"{self.rate} build starts per {window} used"
        return Denial(
            key=key,
            reason=reason,
            retry_at=retry_at,
            now=now,
            position=index + 1,
            waiters=len(self._waiters),
            message=blocked,
        )

    def mark_started(self, key: str) -> None:
        """Optional: call when EAS confirmed the build was created. Moves the key's start to now,
        so the window is measured from the real creation, never from the earlier grant (keeps
        EAS-side creation times inside the limit even when the create call was slow)."""
        now = self._clock()
        if key in self._starts:
            self._starts[key] = max(self._starts[key], now)
        if key in self._in_flight:
            self._in_flight[key] = now

    def release_in_flight(self, key: str) -> None:
        """The key's build finished, failed or was cancelled: free its in-flight slot. Its start
        still counts against the rate until the window passes."""
        self._in_flight.pop(key, None)
        self._notify(self._clock())

    def forget(self, key: str) -> None:
        """The resource is gone or no longer wants a slot: leave the queue and free its in-flight
        slot (its start, if any, still counts against the rate)."""
        self._waiters.pop(key, None)
        self._in_flight.pop(key, None)
        self._notify(self._clock())

    def restore(self, keys_in_flight: Iterable[str], recent_starts: Iterable[tuple[str, float]]) -> None:
        """Rebuild state after a restart from resource status: builds still in flight and build
        start times (epoch seconds). Starts older than the window are ignored. Merges with the
        current state, so it can be called once at startup (before the first `try_acquire`,
        which is what prevents a burst) or once per resumed resource."""
        now = self._clock()
        for key, started in recent_starts:
            started = min(started, now)  # a clock-skewed future start counts as now
            if started + self.window > now:
                self._starts[key] = max(self._starts.get(key, started), started)
        for key in keys_in_flight:
            self._in_flight.setdefault(key, self._starts.get(key))
            self._waiters.pop(key, None)
        self._prune(now)

    # -- waking waiters ------------------------------------------------------------------------

    def on_slot_free(self, callback: SlotFreeCallback) -> Callable[[], None]:
        """Call `callback(keys)` with the waiting keys that can now get a slot whenever a release
        or `forget` frees capacity. Returns a function that unsubscribes. Rate-window slots free
        by the passing of time instead: those waiters were told `retry_at`."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def clear(self) -> None:
        """Forget everything (leadership lost: the next leader restores the state from status)."""
        self._starts.clear()
        self._in_flight.clear()
        self._waiters.clear()

    def snapshot(self) -> LimiterSnapshot:
        now = self._clock()
        self._prune(now)
        return LimiterSnapshot(
            rate=self.rate,
            window_seconds=self.window,
            max_in_flight=self.max_in_flight,
            starts_in_window=len(self._starts),
            in_flight=len(self._in_flight),
            waiters=len(self._waiters),
            free_slots=max(0, min(self._free_rate(), self._free_in_flight())),
            oldest_wait_seconds=max((now - w.first_asked for w in self._waiters.values()), default=0.0),
            last_grant_at=self._last_grant_at,
            waits=self._wait_stats(),
        )

    # -- internals -----------------------------------------------------------------------------

    def _record_wait(self, seconds: float) -> None:
        self._last_grant_at = self._clock()
        seconds = max(0.0, seconds)
        self._wait_count += 1
        self._wait_sum += seconds
        bucket = bisect.bisect_left(WAIT_BUCKETS, seconds)  # the first bound >= seconds
        if bucket < len(WAIT_BUCKETS):
            self._wait_counts[bucket] += 1  # longer waits land in +Inf only (count - last cumulative)

    def _wait_stats(self) -> WaitStats:
        return WaitStats(
            bounds=WAIT_BUCKETS,
            cumulative=tuple(itertools.accumulate(self._wait_counts)),
            count=self._wait_count,
            sum=self._wait_sum,
        )

    def _held(self, key: str) -> Grant | None:
        if key in self._in_flight:
            started = self._in_flight[key]
            if started is None:
                started = self._starts.get(key)
            return Grant(key=key, started_at=started, reacquired=True)
        if key in self._starts:
            return Grant(key=key, started_at=self._starts[key], reacquired=True)
        return None

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._starts.items() if t + self.window <= now]:
            del self._starts[key]
        stale = [k for k, w in self._waiters.items() if w.expires_at(self.stale_after) < now]
        for key in stale:
            del self._waiters[key]
        if stale:
            log.info("limiter dropped %d waiter(s) that stopped asking: %s", len(stale), ", ".join(stale))

    def _free_rate(self) -> int:
        return self.rate - len(self._starts)

    def _free_in_flight(self) -> float:
        if self.max_in_flight == 0:
            return float("inf")
        return self.max_in_flight - len(self._in_flight)

    def _rate_free_times(self) -> list[float]:
        return sorted(t + self.window for t in self._starts.values())

    def _estimate(self, index: int, now: float) -> tuple[float, LimitReason]:
        """When the waiter at `index` (0-based) can get a slot, and what blocks it now."""
        rate_at = self._rate_slot_time(index + 1, now)
        if self._free_in_flight() <= index:
            return max(rate_at, now + self.in_flight_poll), LimitReason.MAX_IN_FLIGHT
        return rate_at, LimitReason.RATE_LIMITED

    def _rate_slot_time(self, slots: int, now: float) -> float:
        """Earliest time `slots` starts in a row can happen under the sliding window, assuming
        each one starts the moment its slot frees (so its own start then occupies the window)."""
        expiries = self._rate_free_times()
        heapq.heapify(expiries)
        count, placed, at = len(expiries), 0, now
        while placed < slots:
            if count < self.rate:
                count += 1
                placed += 1
                heapq.heappush(expiries, at + self.window)
            else:
                at = max(at, heapq.heappop(expiries))
                count -= 1
        return at

    def _notify(self, now: float) -> None:
        self._prune(now)
        if not self._callbacks or not self._waiters:
            return
        free = min(self._free_rate(), self._free_in_flight())
        if free <= 0:
            return
        keys = list(self._waiters)[: int(min(free, len(self._waiters)))]
        for callback in list(self._callbacks):
            try:
                callback(keys)
            except Exception:
                # A faulty subscriber must not break the release path of a finishing build.
                log.exception("limiter slot-free callback failed")


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
