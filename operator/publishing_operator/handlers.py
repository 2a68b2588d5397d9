"""kopf wiring, and nothing else: start-up, login, the watch stream, probes, shutdown.

kopf delivers the watch events (`on.event`); each one refreshes the resource's worker or starts one
(controller.runtime). No change handlers, timers or daemons: they would add kopf's finalizer to
every object and a progress annotation write per retry, and timers cannot adapt their interval to
the EAS queue. Every decision lives in `lifecycle`, every effect in `controller`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import kopf

from publishing_operator.adapters.events import KubeEvents
from publishing_operator.adapters.kube import KubeApi
from publishing_operator.adapters.login import KubeLogin, LoginError
from publishing_operator.api import GROUP, PLURAL, VERSION
from publishing_operator.circuit import CircuitBreaker, CircuitState
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.leadership import Leadership, lead, own_namespace, start_leader_election
from publishing_operator.controller.ledger import ReleaseLedger
from publishing_operator.controller.retention import RetentionLoop
from publishing_operator.controller.runtime import WorkerPool
from publishing_operator.controller.secrets import CredentialResolver
from publishing_operator.expo.clients import ExpoClients
from publishing_operator.health import Health
from publishing_operator.http import pooled_client
from publishing_operator.limiter import StartLimiter
from publishing_operator.metrics import Metrics
from publishing_operator.settings import Settings

registry = kopf.OperatorRegistry()
log = logging.getLogger("publishing_operator")
LOGIN_RETRY = 15.0  # seconds between tries when logging in again fails while running


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """Nothing to diff: the operator has no change handlers (only `on.event`), yet kopf builds the
    "essence" of every object on every watch event to diff it against the last handled one, a deep
    copy of the whole object and another of the result (~4 % of the operator's CPU in a burst)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def kube_login(memo: kopf.Memo) -> KubeLogin:
    """The login `operate()` checked at start (token, certificate or exec plugin; adapters/login)."""
    login: KubeLogin | None = memo.get("login")
    if login is None:
        login = memo["login"] = KubeLogin()
    return login


@kopf.on.login(registry=registry)
async def on_login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """kopf asks at start and again when its credentials expired or were refused (401). A login
    that fails later (a plugin that cannot reach its identity provider) is retried, one line each."""
    try:
        return await asyncio.to_thread(kube_login(memo).for_kopf)  # a plugin may take seconds
    except LoginError as exc:
        raise kopf.TemporaryError(f"cannot log in to Kubernetes: {exc}", delay=LOGIN_RETRY) from None


@kopf.on.startup(registry=registry)
async def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    config: Settings = memo["settings"]
    # Our own names everywhere kopf would write. kopf adds no finalizer here (no handler needs one),
    # and it removes its configured finalizer from objects that need none: so it must not be ours.
    settings.persistence.finalizer = f"{GROUP}/kopf"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase(prefix=GROUP, key="last-handled-configuration")
    settings.posting.reporting_component = "publishing-operator"
    settings.posting.event_name_prefix = "publishing-operator-"
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60

    login = kube_login(memo)
    kube = KubeApi.from_connection_info(await asyncio.to_thread(login.current), relogin=login.fresh)
    metrics: Metrics = memo.get("metrics") or Metrics()
    health: Health = memo.get("health") or Health()
    circuit = CircuitBreaker(
        threshold=config.circuit_threshold, open_for=config.circuit_open_for.total_seconds()
    )
    # One connection pool for every token, bounded as a whole by EXPO_TIMEOUT (http.py).
    http = pooled_client(timeout=config.expo_timeout.total_seconds(), max_connections=50)
    ledger = ReleaseLedger(
        kube, namespace=config.lease_namespace or own_namespace(), name=f"{config.lease_name}-releases"
    )
    retention = RetentionLoop.from_settings(kube, config, before_delete=ledger.record)
    ctx = OperatorContext(
        settings=config,
        kube=kube,
        events=KubeEvents(kube),
        limiter=StartLimiter(
            config.start_rate.count, config.start_rate.window, max_in_flight=config.max_in_flight
        ),
        circuit=circuit,
        expo=ExpoClients(
            config.expo_api_url,
            http,
            on_request=metrics.expo_request,
            timeout=config.expo_timeout.total_seconds(),
            archive_policy=config.archive_policy,
            # Polls of one token's builds wait up to a tenth of the poll interval for company.
            batch_linger=min(config.poll_build.total_seconds() / 10, 2.0),
        ),
        credentials=CredentialResolver(kube),
        metrics=metrics,
        health=health,
        retention=retention,
        ledger=ledger,
    )
    metrics.watch_limiter(ctx.limiter.snapshot)
    metrics.watch_circuit(circuit)
    circuit.on_change(log_circuit)
    pool = WorkerPool(ctx, max_concurrent_steps=config.max_concurrent_steps)
    ctx.live_objects, ctx.unsent_keys = pool.live_objects, pool.unsent_keys
    ctx.limiter.on_slot_free(pool.wake_waiting)
    memo["ctx"], memo["pool"] = ctx, pool
    # What kopf's probe handlers used to show, now in the operator's own probe answers (health.py).
    health.add_info("expo_circuit", lambda: circuit.state.value)
    health.add_info("leader", lambda: "leader" if pool.active else "standby")
    health.add_info("workers", lambda: len(pool))
    if config.leader_election:
        pool.active = False  # until this replica leads
        memo["leadership"] = start_leader_election(ctx, pool)
    else:
        await lead(ctx, pool)
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


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def on_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    pool: WorkerPool | None = memo.get("pool")
    if pool is None:
        return
    if event["type"] == "DELETED":
        pool.forget(event["object"])
    else:
        pool.observe(event["object"])


@kopf.on.cleanup(registry=registry)
async def on_cleanup(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Graceful shutdown: no new steps; running steps get SHUTDOWN_GRACE to finish; then stop."""
    ctx: OperatorContext | None = memo.get("ctx")
    pool: WorkerPool | None = memo.get("pool")
    if ctx is None or pool is None:
        return
    ctx.health.note_stopping()  # readiness goes down at once; liveness holds while steps finish
    retention = ctx.retention
    if isinstance(retention, RetentionLoop):
        await retention.stop()
    in_progress = await pool.shutdown(ctx.settings.shutdown_grace.total_seconds())
    leadership: Leadership | None = memo.get("leadership")
    if leadership is not None:  # released last: the standby takes over once our steps are done
        leadership.stop.set()
        await leadership.task
    if in_progress:
        logger.info(
            "shutdown: %d resource(s) in progress, resumed from status at the next start: %s",
            len(in_progress),
            ", ".join(in_progress),
        )
    if isinstance(ctx.events, KubeEvents):
        await ctx.events.close()
    if isinstance(ctx.expo, ExpoClients):
        await ctx.expo.aclose()
    await ctx.kube.aclose()
