"""The Expo circuit breaker with an explicit clock."""

from publishing_operator.circuit import CircuitBreaker, CircuitState
from tests.fixtures.clock import FakeClock


def test_opens_after_threshold_consecutive_failures_and_success_resets_the_count() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, open_for=30, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # not consecutive any more
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED and breaker.allows_new_work()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allows_new_work()
    assert breaker.reopens_in() == 30


def test_half_opens_after_the_wait_and_a_failed_probe_doubles_it_up_to_the_cap() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, open_for=30, max_open_for=50, clock=clock)
    breaker.record_failure()
    clock.now += 30
    assert breaker.state is CircuitState.HALF_OPEN and breaker.allows_new_work()
    breaker.record_failure()  # the probe failed
    assert breaker.state is CircuitState.OPEN and breaker.reopens_in() == 50  # 60, capped at 50
    clock.now += 50
    breaker.record_success()  # the probe succeeded
    assert breaker.state is CircuitState.CLOSED and breaker.consecutive_failures == 0
    breaker.record_failure()
    assert breaker.reopens_in() == 30  # back to the base wait


def test_listeners_hear_open_and_close_once() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=2, open_for=10, clock=clock)
    heard: list[CircuitState] = []
    breaker.on_change(heard.append)
    for _ in range(5):
        breaker.record_failure()
    breaker.record_success()
    breaker.record_success()
    assert heard == [CircuitState.OPEN, CircuitState.CLOSED]
