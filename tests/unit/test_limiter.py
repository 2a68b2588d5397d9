"""The global start limiter, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from publishing_operator.limiter import Denial, Grant, LimitReason, StartLimiter
from tests.fixtures.clock import FakeClock

T0 = 1_800_000_000.0  # an epoch-seconds origin, like the timestamps in resource status


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make(clock: FakeClock, rate: int = 5, window: float = 60.0, **kwargs: object) -> StartLimiter:
    return StartLimiter(rate, window, clock=clock, **kwargs)  # type: ignore[arg-type]


def grant(result: Grant | Denial) -> Grant:
    assert isinstance(result, Grant), result
    return result


def denial(result: Grant | Denial) -> Denial:
    assert isinstance(result, Denial), result
    return result


def test_twelve_at_once_five_granted_rest_denied_with_retry_times(clock: FakeClock) -> None:
    limiter = make(clock)
    results = [limiter.try_acquire(f"k{i}") for i in range(12)]

    assert [isinstance(r, Grant) for r in results] == [True] * 5 + [False] * 7
    denials = [denial(r) for r in results[5:]]
    assert [d.position for d in denials] == [1, 2, 3, 4, 5, 6, 7]
    assert all(d.reason is LimitReason.RATE_LIMITED for d in denials)
    # The five slots free together at T0+60; waiters 6 and 7 need the slots that the first five
    # waiters take at T0+60, which free at T0+120.
    assert [d.retry_at for d in denials] == [T0 + 60] * 5 + [T0 + 120] * 2
    assert denials[0].retry_after == timedelta(seconds=60)
    assert denials[0].retry_at_datetime == datetime.fromtimestamp(T0 + 60, tz=UTC)
    assert denials[2].message == "5 build starts per 1m used"
    assert (denials[2].position, denials[2].waiters) == (3, 3)  # for logs, not for status
    snap = limiter.snapshot()
    assert (snap.starts_in_window, snap.waiters, snap.free_slots, snap.in_flight) == (5, 7, 0, 5)


def test_retry_at_follows_the_oldest_start(clock: FakeClock) -> None:
    limiter = make(clock, rate=2, window=60)
    grant(limiter.try_acquire("a"))
    clock.advance(10)
    grant(limiter.try_acquire("b"))
    clock.advance(5)
    first, second, third = (denial(limiter.try_acquire(k)) for k in ("c", "d", "e"))
    assert first.retry_at == T0 + 60  # a's start leaves the window
    assert second.retry_at == T0 + 70  # b's start leaves the window
    assert third.retry_at == T0 + 120  # c's start (at T0+60) leaves the window
    assert first.retry_after == timedelta(seconds=45)


def test_slots_free_in_fifo_order_whoever_asks_first(clock: FakeClock) -> None:
    limiter = make(clock, rate=2, window=60)
    for key in ("a", "b"):
        grant(limiter.try_acquire(key))
    for key in ("w1", "w2", "w3", "w4"):
        denial(limiter.try_acquire(key))

    clock.advance(60)  # both slots free
    # The newest waiters ask first: slots are reserved for the two longest-waiting keys.
    assert denial(limiter.try_acquire("w4")).position == 4
    assert denial(limiter.try_acquire("w3")).position == 3
    assert grant(limiter.try_acquire("w2")).started_at == clock.now  # second in line, two free
    assert grant(limiter.try_acquire("w1")).started_at == clock.now
    again = denial(limiter.try_acquire("w4"))
    assert again.position == 2
    assert again.retry_at == clock.now + 60

    clock.advance(60)  # two slots free, w3 and w4 waiting: each has one reserved
    grant(limiter.try_acquire("w4"))
    grant(limiter.try_acquire("w3"))
    assert limiter.snapshot().waiters == 0


def test_a_free_slot_is_not_wasted_on_a_key_that_is_not_first(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=60)
    grant(limiter.try_acquire("a"))
    denial(limiter.try_acquire("first"))
    denial(limiter.try_acquire("second"))
    clock.advance(60)
    late = denial(limiter.try_acquire("second"))
    assert late.position == 2
    assert late.retry_at == clock.now + 60  # after "first" has had its slot
    grant(limiter.try_acquire("first"))
    assert limiter.snapshot().free_slots == 0


def test_reacquire_is_idempotent_and_consumes_no_second_slot(clock: FakeClock) -> None:
    limiter = make(clock, rate=2, window=60)
    first = grant(limiter.try_acquire("uid-1.1"))
    clock.advance(30)
    again = grant(limiter.try_acquire("uid-1.1"))
    assert again.reacquired
    assert again.started_at == first.started_at == T0
    assert limiter.snapshot().starts_in_window == 1
    grant(limiter.try_acquire("uid-2.1"))  # the second slot is still there
    denial(limiter.try_acquire("uid-3.1"))


def test_reacquire_after_the_window_while_in_flight_returns_the_same_grant(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=60)
    grant(limiter.try_acquire("a.1"))
    clock.advance(600)
    again = grant(limiter.try_acquire("a.1"))
    assert again.reacquired
    assert again.started_at == T0
    assert limiter.snapshot().starts_in_window == 0
    grant(limiter.try_acquire("b.1"))  # the rate slot was free again; a.1 did not re-take it


def test_a_new_attempt_is_a_new_start(clock: FakeClock) -> None:
    limiter = make(clock, rate=2, window=60)
    grant(limiter.try_acquire("uid.1"))
    limiter.release_in_flight("uid.1")
    second = grant(limiter.try_acquire("uid.2"))
    assert not second.reacquired
    denial(limiter.try_acquire("other.1"))


def test_in_flight_cap(clock: FakeClock) -> None:
    limiter = make(clock, rate=10, window=60, max_in_flight=2, in_flight_poll=15)
    grant(limiter.try_acquire("a"))
    grant(limiter.try_acquire("b"))
    blocked = denial(limiter.try_acquire("c"))
    assert blocked.reason is LimitReason.MAX_IN_FLIGHT
    assert blocked.retry_at == clock.now + 15  # unknown when a build ends: poll
    assert blocked.message == "2 builds in flight (the in-flight cap)"
    snap = limiter.snapshot()
    assert (snap.in_flight, snap.free_slots, snap.waiters) == (2, 0, 1)

    woken: list[Sequence[str]] = []
    limiter.on_slot_free(woken.append)
    clock.advance(5)
    limiter.release_in_flight("a")
    assert woken == [["c"]]
    assert limiter.snapshot().free_slots == 1
    grant(limiter.try_acquire("c"))
    denial(limiter.try_acquire("d"))


def test_in_flight_and_rate_both_blocking_reports_the_in_flight_cap(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=60, max_in_flight=1, in_flight_poll=10)
    grant(limiter.try_acquire("a"))
    blocked = denial(limiter.try_acquire("b"))
    assert blocked.reason is LimitReason.MAX_IN_FLIGHT
    assert blocked.retry_at == T0 + 60  # the rate slot frees later than the poll delay
    limiter.release_in_flight("a")
    rate_only = denial(limiter.try_acquire("b"))
    assert rate_only.reason is LimitReason.RATE_LIMITED
    assert rate_only.retry_at == T0 + 60


def test_release_keeps_the_start_in_the_rate_window(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=60)
    grant(limiter.try_acquire("a"))
    limiter.release_in_flight("a")
    assert denial(limiter.try_acquire("b")).retry_at == T0 + 60


def test_slot_free_callbacks_wake_only_waiters_that_can_go_and_can_unsubscribe(clock: FakeClock) -> None:
    limiter = make(clock, rate=10, window=60, max_in_flight=1)
    grant(limiter.try_acquire("a"))
    for key in ("w1", "w2", "w3"):
        denial(limiter.try_acquire(key))
    calls: list[Sequence[str]] = []

    def broken(_keys: Sequence[str]) -> None:
        raise RuntimeError("subscriber bug")

    limiter.on_slot_free(broken)  # must not break the release path
    unsubscribe = limiter.on_slot_free(calls.append)
    limiter.release_in_flight("a")
    assert calls == [["w1"]]
    grant(limiter.try_acquire("w1"))
    unsubscribe()
    limiter.release_in_flight("w1")
    assert calls == [["w1"]]


def test_forget_leaves_the_queue_and_frees_in_flight(clock: FakeClock) -> None:
    limiter = make(clock, rate=10, window=60, max_in_flight=1)
    grant(limiter.try_acquire("a"))
    denial(limiter.try_acquire("deleted"))
    denial(limiter.try_acquire("b"))
    limiter.forget("deleted")
    woken: list[Sequence[str]] = []
    limiter.on_slot_free(woken.append)
    limiter.forget("a")
    assert woken == [["b"]]
    grant(limiter.try_acquire("b"))


def test_stale_waiters_are_dropped_so_the_next_gets_the_slot(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=60)  # stale after 2 x window past the told retry time
    grant(limiter.try_acquire("a"))
    gone = denial(limiter.try_acquire("gone"))  # never asks again (resource deleted)
    denial(limiter.try_acquire("b"))
    assert gone.retry_at == T0 + 60

    clock.advance(60 + 120)  # exactly at the grace: still kept
    assert denial(limiter.try_acquire("b")).position == 2
    clock.advance(1)
    grant(limiter.try_acquire("b"))
    assert limiter.snapshot().waiters == 0


def test_a_waiter_told_to_come_back_later_is_not_stale_while_it_obeys(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=60, stale_after=30)
    grant(limiter.try_acquire("a"))
    ahead = [denial(limiter.try_acquire(f"w{i}")) for i in range(5)]
    last = ahead[-1]
    assert last.retry_at == T0 + 300
    # Everyone obeys exactly their retry time: each gets its slot, nobody is dropped as stale.
    for i, told in enumerate(ahead):
        clock.now = told.retry_at
        assert grant(limiter.try_acquire(f"w{i}")).started_at == told.retry_at


def test_restore_prevents_a_burst_after_restart(clock: FakeClock) -> None:
    limiter = make(clock, rate=5, window=60, max_in_flight=4)
    limiter.restore(
        keys_in_flight=["x.1", "y.1", "z.1"],
        recent_starts=[("x.1", T0 - 50), ("y.1", T0 - 10), ("old.1", T0 - 61), ("q.1", T0 - 30)],
    )
    snap = limiter.snapshot()
    assert (snap.starts_in_window, snap.in_flight, snap.free_slots) == (3, 3, 1)
    grant(limiter.try_acquire("new.1"))
    blocked = denial(limiter.try_acquire("new2.1"))
    assert blocked.reason is LimitReason.MAX_IN_FLIGHT
    # A resumed handler re-asking for its restored key gets its grant back.
    again = grant(limiter.try_acquire("y.1"))
    assert again.reacquired
    assert again.started_at == T0 - 10
    restored_without_time = make(clock)
    restored_without_time.restore(["r.1"], [])
    assert grant(restored_without_time.try_acquire("r.1")).started_at is None


def test_restore_with_more_starts_than_a_lowered_rate(clock: FakeClock) -> None:
    limiter = make(clock, rate=2, window=60)
    limiter.restore([], [(f"k{i}", T0 - 40 + i) for i in range(4)])  # starts at -40, -39, -38, -37
    blocked = denial(limiter.try_acquire("n"))
    assert blocked.retry_at == T0 + 20 + 2  # two must leave before one slot is free
    clock.now = T0 + 22
    grant(limiter.try_acquire("n"))


def test_restore_is_idempotent_and_merges(clock: FakeClock) -> None:
    limiter = make(clock, rate=3, window=60)
    limiter.restore(["a"], [("a", T0 - 5)])
    limiter.restore(["a"], [("a", T0 - 5)])
    limiter.restore(["b"], [("b", T0 + 100)])  # clock skew: counted as now
    snap = limiter.snapshot()
    assert (snap.starts_in_window, snap.in_flight) == (2, 2)
    clock.advance(60)
    assert limiter.snapshot().starts_in_window == 0


def test_mark_started_measures_the_window_from_the_real_creation(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=60, max_in_flight=0)
    grant(limiter.try_acquire("a"))
    clock.advance(3)  # the EAS create call took 3 s
    limiter.mark_started("a")
    assert denial(limiter.try_acquire("b")).retry_at == T0 + 63
    limiter.mark_started("unknown")  # harmless


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="rate"):
        StartLimiter(0, 60)
    with pytest.raises(ValueError, match="window"):
        StartLimiter(1, timedelta(0))
    with pytest.raises(ValueError, match="max_in_flight"):
        StartLimiter(1, 60, max_in_flight=-1)


def test_accepts_timedelta_window_and_defaults_to_wall_clock() -> None:
    limiter = StartLimiter(5, timedelta(minutes=1))
    assert limiter.window == 60.0
    result = grant(limiter.try_acquire("a"))
    assert result.started_at is not None
    assert abs(result.started_at - datetime.now(tz=UTC).timestamp()) < 60


@pytest.mark.parametrize("seed", range(8))
def test_randomized_run_never_exceeds_the_rate_and_nobody_starves(seed: int) -> None:
    """Keys arrive at random times, obey their retry time with random lateness, some give up
    (deleted resources); builds run a random while. Invariants: no sliding window holds more
    than `rate` starts, the in-flight cap holds, every key that keeps asking starts."""
    rng = random.Random(seed)
    rate, window, cap = rng.randint(1, 6), float(rng.choice([10, 60, 90])), rng.choice([0, 0, 3, 8])
    clock = FakeClock(T0)
    limiter = StartLimiter(rate, window, max_in_flight=cap, clock=clock, in_flight_poll=5)
    woken: set[str] = set()
    limiter.on_slot_free(woken.update)

    keys = [f"k{i}" for i in range(60)]
    arrivals = sorted((T0 + rng.uniform(0, 10 * window), key) for key in keys)
    quitters = set(rng.sample(keys, 5))
    next_ask: dict[str, float] = dict((k, t) for t, k in arrivals)
    finish_at: dict[str, float] = {}
    starts: list[float] = []
    started: set[str] = set()
    asks = 0

    while next_ask or finish_at:
        clock.now = min([*next_ask.values(), *finish_at.values()])
        for key in [k for k, t in finish_at.items() if t <= clock.now]:
            del finish_at[key]
            limiter.release_in_flight(key)
        for key in sorted((k for k, t in next_ask.items() if t <= clock.now), key=lambda k: rng.random()):
            asks += 1
            result = limiter.try_acquire(key)
            if isinstance(result, Grant):
                assert not result.reacquired
                del next_ask[key]
                started.add(key)
                starts.append(clock.now)
                finish_at[key] = clock.now + rng.uniform(0, 3 * window)
                if cap:
                    assert limiter.snapshot().in_flight <= cap
            elif key in quitters and rng.random() < 0.5:
                del next_ask[key]  # gives up without telling the limiter
            else:
                assert result.retry_at >= clock.now
                lateness = rng.choice([0.0, 0.0, rng.uniform(0, window / 4)])
                next_ask[key] = result.retry_at + lateness
                if key in woken:  # a woken waiter asks again at once
                    woken.discard(key)
                    next_ask[key] = min(next_ask[key], clock.now + rng.uniform(0, 1))
        assert asks < 100_000, "no progress"

    persistent = set(keys) - quitters
    assert persistent <= started
    starts.sort()
    for i, t in enumerate(starts):
        in_window = [s for s in starts[i:] if s < t + window]
        assert len(in_window) <= rate, (seed, t, in_window)


# -- how long waiters wait (for the limiter_wait_seconds histogram) ----------------------------------


def test_waits_are_measured_from_the_first_denied_request_to_the_grant(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=60)
    grant(limiter.try_acquire("a"))  # granted at once: waited 0 s
    denial(limiter.try_acquire("b"))
    clock.advance(20)
    denial(limiter.try_acquire("b"))  # asking again does not restart its clock
    assert limiter.snapshot().oldest_wait_seconds == 20
    clock.advance(40)
    grant(limiter.try_acquire("b"))  # granted 60 s after its first request
    grant(limiter.try_acquire("b"))  # a re-acquired grant is no new start
    waits = limiter.snapshot().waits
    assert (waits.count, waits.sum) == (2, 60.0)
    by_bound = dict(zip(waits.bounds, waits.cumulative, strict=True))
    assert (by_bound[1.0], by_bound[30.0], by_bound[60.0], by_bound[14400.0]) == (1, 1, 2, 2)
    assert limiter.snapshot().oldest_wait_seconds == 0


def test_a_wait_beyond_the_last_bound_counts_only_in_the_total(clock: FakeClock) -> None:
    limiter = make(clock, rate=1, window=6 * 3600, stale_after=24 * 3600)
    grant(limiter.try_acquire("a"))
    denial(limiter.try_acquire("b"))
    clock.advance(6 * 3600)
    grant(limiter.try_acquire("b"))
    waits = limiter.snapshot().waits
    assert waits.count == 2 and waits.cumulative[-1] == 1  # +Inf = count holds the 6 h wait
