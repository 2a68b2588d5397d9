"""The side-by-side benchmark's arithmetic (bench.scenarios): the old design's harness definitions."""

from __future__ import annotations

import math

import pytest
from bench.scenarios import FULL, QUICK, lateness, max_in_any_window, median, percentile, scenario


def test_parameters_match_the_old_design_harness() -> None:
    burst, fleet, rate = FULL["burst"], FULL["fleet"], FULL["ratelimit"]
    assert (burst.n, burst.duration_ms, burst.poll_ms, burst.peer_concurrency) == (200, 500, 100, 50)
    assert (fleet.n, fleet.duration_ms, fleet.poll_ms, fleet.window_s, fleet.settle_s) == (
        1000,
        120_000,
        30_000,
        60,
        5,
    )
    assert (rate.n, rate.limit_max, rate.limit_window_ms, rate.duration_ms) == (20, 5, 6000, 500)
    assert [QUICK[n].n for n in ("burst", "fleet", "ratelimit")] == [50, 100, 10]
    assert (QUICK["fleet"].duration_ms, QUICK["fleet"].poll_ms, QUICK["fleet"].window_s) == (
        30_000,
        5_000,
        15,
    )
    assert scenario("burst", quick=True, n=7).n == 7


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([3.0, 1.0, 2.0], 0) == 1
    assert percentile([5.0], 99) == 5
    assert math.isnan(percentile([], 50))


def test_median_of_even_and_odd_counts() -> None:
    assert median([3.0, 1.0, 2.0]) == 2
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        ([], 0),
        ([0, 1, 2, 3, 4], 5),
        ([0, 1, 2, 3, 4, 6000], 5),  # half-open: a start at t + window is in the next window
        ([0, 1, 2, 3, 4, 5999], 6),
        ([5999, 0, 4, 1, 3, 2], 6),  # order does not matter
        ([0, 6000, 12000, 12001], 2),
    ],
)
def test_most_starts_in_any_sliding_window(starts: list[float], expected: int) -> None:
    assert max_in_any_window(starts, 6000) == expected


def test_lateness_against_a_strict_sliding_window() -> None:
    creates = [0.0] * 7
    starts = [10, 20, 30, 40, 50, 6015, 6018]
    late = lateness(starts, creates, limit=5, window=6000)
    assert late[:5] == [10, 20, 30, 40, 50]  # the first window waits only for its create call
    assert late[5:] == [5, -2]  # allowed at start[0] + 6000 = 6010 and start[1] + 6000 = 6020
