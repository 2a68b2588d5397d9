"""At start-up, before the first new build start: what the limiter must already count."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from publishing_operator import backoff
from publishing_operator.adapters.kube import KubeError
from publishing_operator.api import IN_FLIGHT_PHASES
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.worker import status_of

log = logging.getLogger("publishing_operator")

# The API server may be restarting while the operator starts: list again until it answers.
RESTORE_BACKOFF_INITIAL = 0.5
RESTORE_BACKOFF_CAP = 10.0


async def restore_limiter(
    ctx: OperatorContext, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Builds started within the window and builds in flight count before the first new start.

    A Kubernetes API that fails transiently (down, 5xx, 429) is asked again with backoff, one
    warning line per failure: start-up waits for it rather than failing (kopf would retry a failed
    start-up activity only a minute later, with a traceback)."""
    failures = 0
    while True:
        try:
            await _restore(ctx)
            return
        except KubeError as exc:
            if not (exc.status == 0 or exc.status == 429 or exc.status >= 500):
                raise
            failures += 1
            delay = backoff.exponential(failures, initial=RESTORE_BACKOFF_INITIAL, cap=RESTORE_BACKOFF_CAP)
            log.warning("start-up: listing PublishingBuilds failed (%s); trying again in %.1fs", exc, delay)
            await sleep(delay)


async def _restore(ctx: OperatorContext) -> None:
    namespaces = ctx.settings.namespaces or (None,)
    in_flight: list[str] = []
    starts: list[tuple[str, float]] = []
    for namespace in namespaces:
        for body in await ctx.kube.list_publishing_builds(namespace):
            status = status_of(body)
            build = status.build
            if build is None or build.request_key is None:
                continue
            started: datetime | None = build.created_at or build.requested_at
            if started is not None:
                starts.append((build.request_key, started.timestamp()))
            if status.phase in IN_FLIGHT_PHASES and not build.completed_at:
                in_flight.append(build.request_key)
    ctx.limiter.restore(in_flight, starts)
