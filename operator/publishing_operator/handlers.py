"""kopf wiring, and nothing else: settings at start-up, login, the watch stream, probes, shutdown.

Every decision lives in lifecycle.py and every step in reconciler.py. kopf delivers the watch
events (`on.event`): each one refreshes the resource's worker or starts one. No change handlers,
timers or daemons: they would add kopf's finalizer to every object and a progress annotation
write per retry, and timers cannot adapt their interval to the EAS queue. Workers poll only
resources in flight, at intervals that follow the EAS state, and are woken at once by events.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import httpx
import kopf

from publishing_operator.api import GROUP, IN_FLIGHT_PHASES, PLURAL, VERSION
from publishing_operator.circuit import CircuitBreaker, CircuitState
from publishing_operator.history import RetentionLoop
from publishing_operator.kube import KubeApi
from publishing_operator.limiter import StartLimiter
from publishing_operator.metrics import Metrics
from publishing_operator.reconciler import OperatorContext, status_of
from publishing_operator.settings import Settings

registry = kopf.OperatorRegistry()
log = logging.getLogger("publishing_operator")


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account first, then $KUBECONFIG / ~/.kube/config."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.login(registry=registry)
async def on_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return login(**kwargs)


@kopf.on.startup(registry=registry)
async def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    config: Settings = memo["settings"]
    # Our own names everywhere kopf would write. kopf adds no finalizer here (no handler needs one),
    # and it removes its configured finalizer from objects that need none: so it must not be ours.
    settings.persistence.finalizer = f"{GROUP}/kopf"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.reporting_component = "publishing-operator"
    settings.posting.event_name_prefix = "publishing-operator-"
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60

    info = login(logger=logger, settings=settings)
    if info is None:
        raise kopf.PermanentError("no Kubernetes credentials: neither in-cluster nor a kubeconfig")
    kube = KubeApi.from_connection_info(info, relogin=lambda: login(logger=logger, settings=settings))
    limiter = StartLimiter(
        config.start_rate.count, config.start_rate.window, max_in_flight=config.max_in_flight
    )
    ctx = OperatorContext(
        settings=config,
        kube=kube,
        limiter=limiter,
        circuit=CircuitBreaker(
            threshold=config.circuit_threshold, open_for=config.circuit_open_for.total_seconds()
        ),
        http=httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=50)),
        metrics=memo.get("metrics") or Metrics(),
    )
    ctx.metrics.watch_limiter(limiter.snapshot)
    ctx.metrics.watch_circuit(ctx.circuit)
    ctx.circuit.on_change(log_circuit)
    await restore_limiter(ctx)
    limiter.on_slot_free(ctx.wake_waiting)
    ctx.retention = RetentionLoop.from_settings(kube, config).start()
    memo["ctx"] = ctx
    logger.info(
        "publishing-operator ready: Expo %s, start rate %s, max in flight %s, namespaces %s",
        config.expo_api_url,
        config.start_rate,
        config.max_in_flight or "unlimited",
        ",".join(config.namespaces) or "all",
    )


def log_circuit(state: CircuitState) -> None:
    if state is CircuitState.OPEN:
        log.warning(
            "Expo API circuit is open: new builds wait (ExpoUnavailable); polling goes on with backoff"
        )
    elif state is CircuitState.CLOSED:
        log.info("Expo API circuit is closed again: builds start normally")


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


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def on_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    ctx: OperatorContext | None = memo.get("ctx")
    if ctx is None:
        return
    body = event["object"]
    if event["type"] == "DELETED":
        ctx.forget(body)
    else:
        ctx.observe(body)


@kopf.on.probe(id="expo_circuit", registry=registry)
async def probe_circuit(memo: kopf.Memo, **_: Any) -> str:
    ctx: OperatorContext | None = memo.get("ctx")
    return ctx.circuit.state.value if ctx else "starting"


@kopf.on.probe(id="workers", registry=registry)
async def probe_workers(memo: kopf.Memo, **_: Any) -> int:
    ctx: OperatorContext | None = memo.get("ctx")
    return len(ctx.workers) if ctx else 0


@kopf.on.cleanup(registry=registry)
async def on_cleanup(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Graceful shutdown: no new steps; running steps get SHUTDOWN_GRACE to finish; then stop."""
    ctx: OperatorContext | None = memo.get("ctx")
    if ctx is None:
        return
    ctx.stopping = True
    if ctx.retention is not None:
        await ctx.retention.stop()
    in_progress = sorted(f"{w.namespace}/{w.name}" for w in ctx.workers.values())
    tasks = [w.task for w in ctx.workers.values() if w.task is not None and not w.task.done()]
    for worker in ctx.workers.values():
        worker.wake.set()  # idle workers leave at once; busy ones after their current step
    grace = ctx.settings.shutdown_grace.total_seconds()
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning(
                "shutdown: %d step(s) did not finish within %.0fs; the next start resumes them from status",
                len(pending),
                grace,
            )
    if in_progress:
        logger.info(
            "shutdown: %d resource(s) in progress, resumed from status at the next start: %s",
            len(in_progress),
            ", ".join(in_progress),
        )
    for client in ctx.expo_clients():
        await client.aclose()
    await ctx.http.aclose()
    await ctx.kube.aclose()
