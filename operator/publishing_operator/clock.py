"""The operator's one clock: timezone-aware UTC. Components take a clock argument defaulting to
this, so tests inject their own."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
