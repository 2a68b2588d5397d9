"""The one exponential backoff: every wait that grows with failures (EAS attempts, transient trouble,
credential re-checks, Expo request retries) is computed here, and spread with jitter here."""

from __future__ import annotations

import random

MAX_EXPONENT = 64  # enough for any cap; a huge failure count never overflows a float


def exponential(failures: int, *, initial: float, cap: float, factor: float = 2.0) -> float:
    """Seconds to wait after `failures` consecutive failures: initial, initial*factor, ... up to cap.

    `failures` below 1 counts as 1."""
    exponent = min(max(failures - 1, 0), MAX_EXPONENT)
    return min(cap, initial * factor**exponent)


def spread(seconds: float, *, low: float, high: float, rng: random.Random | None = None) -> float:
    """`seconds` scaled by a random factor in [low, high]: callers that fail or poll together do not
    retry in lockstep."""
    factor = (rng or random).uniform(low, high)
    return seconds * factor
