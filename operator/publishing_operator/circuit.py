"""A circuit breaker over Expo's API: the operator's "graceful degradation".

After `threshold` consecutive failed calls (transient errors: network, 5xx, 429) the circuit opens:
no new build starts while it is open (resources wait as Queued / ExpoUnavailable), polling goes on
with backoff. After `open_for` it half-opens: the next call is a probe; a success closes the circuit,
a failure opens it again for twice as long (capped). Time comes from an injected monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 5,
        open_for: float = 30.0,
        max_open_for: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_open_for = open_for
        self.max_open_for = max_open_for
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._open_for = open_for
        self._listeners: list[Callable[[CircuitState], None]] = []

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._open_for:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allows_new_work(self) -> bool:
        """New build starts are allowed when closed, or as the probe when half-open."""
        return self.state is not CircuitState.OPEN

    def reopens_in(self) -> float:
        """Seconds until the circuit half-opens (0 when it is not open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._open_for - self._clock())

    def on_change(self, listener: Callable[[CircuitState], None]) -> None:
        self._listeners.append(listener)

    def record_success(self) -> None:
        before = self.state
        self._failures = 0
        self._opened_at = None
        self._open_for = self.base_open_for
        if before is not CircuitState.CLOSED:
            self._notify()

    def record_failure(self) -> None:
        before = self.state
        self._failures += 1
        if before is CircuitState.HALF_OPEN:
            # The probe failed: open again, for longer.
            self._open_for = min(self._open_for * 2, self.max_open_for)
            self._opened_at = self._clock()
            self._notify()
        elif before is CircuitState.CLOSED and self._failures >= self.threshold:
            self._opened_at = self._clock()
            self._notify()

    def _notify(self) -> None:
        state = self.state
        for listener in list(self._listeners):
            listener(state)
