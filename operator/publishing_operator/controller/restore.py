"""At start-up, before the first new build start: what the limiter must already count."""

from __future__ import annotations

from datetime import datetime

from publishing_operator.api import IN_FLIGHT_PHASES
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.worker import status_of


async def restore_limiter(ctx: OperatorContext) -> None:
    """Builds started within the window and builds in flight count before the first new start."""
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
