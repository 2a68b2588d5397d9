"""The three side-by-side scenarios and the figures both sides report, defined once.

Parameters and definitions are those of the old design's measuring harness (a BullMQ worker on
Redis; its `bench.js`, `SCENARIOS` and metric code, read 2026-11-27), so the two columns of the
side-by-side table mean the same thing:

  burst      N=200 (quick 50) created at once; a build finishes D=500 ms after it was created and
             is polled every P=100 ms; the start limiter is out of the way (1000 per 1000 ms).
  fleet      N=1000 (quick 100) in flight: D=120 s, P=30 s (quick D=30 s, P=5 s); once every build
             has been created, wait `settle` s (5, quick 2), then measure a `window` (60 s, quick 15).
  ratelimit  N=20 (quick 10); at most 5 starts per 6000 ms (the seed's 5 per 60 s, time-scaled
             10x); D=500 ms, P=100 ms.

Figures (pure functions below, the same arithmetic as the harness):
  pickup     create call -> the build-create request as the Expo side sees it (nearest rank).
  drain      first create call -> last build done.
  starts     a start is the Expo side receiving a build-create request; `max_in_any_window` is the
             most starts in any half-open window [t, t + duration). The k-th start (in time order)
             is allowed no earlier than max(k-th create call, start[k - max] + duration);
             lateness = actual - allowed, for the starts that had to wait (k >= max).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

SCENARIO_NAMES = ("burst", "fleet", "ratelimit")


@dataclass(frozen=True)
class Scenario:
    name: str
    n: int
    duration_ms: float  # D: a build finishes D after it was created
    poll_ms: float  # P: the poll interval while building (and submitting)
    limit_max: int  # at most `limit_max` starts per `limit_window_ms`
    limit_window_ms: float
    peer_concurrency: int | None  # the old design's worker concurrency (None: one slot per job)
    quick: bool = False
    window_s: float = 0.0  # fleet: the measured window ...
    settle_s: float = 0.0  # ... which starts this long after every build was created

    @property
    def tag(self) -> str:
        return self.name + ("-quick" if self.quick else "")


FULL = {
    "burst": Scenario("burst", 200, 500, 100, 1000, 1000, peer_concurrency=50),
    "fleet": Scenario(
        "fleet", 1000, 120_000, 30_000, 100_000, 1000, peer_concurrency=None, window_s=60, settle_s=5
    ),
    "ratelimit": Scenario("ratelimit", 20, 500, 100, 5, 6000, peer_concurrency=None),
}
QUICK = {
    "burst": replace(FULL["burst"], n=50, quick=True),
    "fleet": replace(
        FULL["fleet"], n=100, duration_ms=30_000, poll_ms=5_000, window_s=15, settle_s=2, quick=True
    ),
    "ratelimit": replace(FULL["ratelimit"], n=10, quick=True),
}


def scenario(name: str, *, quick: bool = False, n: int | None = None) -> Scenario:
    chosen = (QUICK if quick else FULL)[name]
    return replace(chosen, n=n) if n is not None else chosen


# ---- the arithmetic ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank, as the harness: the ceil(q/100 * n)-th smallest value (the smallest for q=0)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float:
    """The middle value, or the mean of the two middle ones (report.js)."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def max_in_any_window(starts: Sequence[float], window: float) -> int:
    """The most starts in any half-open window [t, t + window); every such maximum begins at a start."""
    ordered = sorted(starts)
    best, j = 0, 0
    for i, t in enumerate(ordered):
        j = max(j, i)
        while j < len(ordered) and ordered[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


def lateness(starts: Sequence[float], creates: Sequence[float], limit: int, window: float) -> list[float]:
    """Per start in time order: actual - allowed (negative: earlier than a sliding window allows).

    Both series are sorted independently, as in the harness: the k-th start is compared with the
    k-th create call, whichever resource either belongs to.
    """
    s, adds = sorted(starts), sorted(creates)
    return [
        t - max(adds[k] if k < len(adds) else -math.inf, s[k - limit] + window if k >= limit else -math.inf)
        for k, t in enumerate(s)
    ]
