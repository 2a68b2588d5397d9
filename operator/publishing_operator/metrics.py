"""Prometheus metrics (DESIGN.md section 6): counters and histograms fed by the reconciler, gauges
read at scrape time, and the `/metrics` HTTP endpoint.

Everything lives on one `CollectorRegistry` per `Metrics` object, never the process-global one:
tests and several operators embedded in one process (sandbox, integration tests) each get their
own numbers and never collide on registration.

Labels come only from small closed sets (platform, result, phase, stage, retry reason, Expo
operation, request outcome); any other value is counted as "other". Resource names, namespaces,
uids, build and request ids are never labels: each distinct label value is a new time series kept
by Prometheus for its whole retention, so per-resource labels grow without bound (Tekton flags its
name labels "unbounded cardinality", Shipwright disables them by default), and a closed set also
means nothing a user or Expo sends (a token pasted into the wrong field, an error text) can ever
end up in a label. Per-resource detail belongs in logs, Events and status.

Gauges for the limiter, the circuit breaker and resources by phase are computed by a custom
collector when Prometheus scrapes, from callbacks; the HTTP handler runs on the operator's event
loop, so those callbacks read the single-threaded limiter safely.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from pydantic import ValidationError

from publishing_operator import __version__
from publishing_operator.api import (
    AttemptResult,
    BuildStatus,
    ObjectMeta,
    Phase,
    Platform,
    PublishingBuildStatus,
    SubmissionStatus,
)
from publishing_operator.circuit import CircuitBreaker, CircuitState
from publishing_operator.expo.archive import UPLOAD
from publishing_operator.expo.errors import ErrorKind
from publishing_operator.expo.operations import OPERATIONS
from publishing_operator.expo.transport import RequestOutcome
from publishing_operator.limiter import LimiterSnapshot

log = logging.getLogger("publishing_operator.metrics")
T = TypeVar("T")

PREFIX = "publishing"
OTHER = "other"  # the label value for anything outside a label's closed set
NO_PHASE = "none"  # from_phase of a resource's first status write

# EAS builds run minutes to hours: 30 s ... 4 h.
LONG_BUCKETS = (30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400)
# One HTTP request to Expo; archive uploads may take minutes.
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Creation to first EAS call: seconds when idle, hours behind a busy start limiter.
PICKUP_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)


class Result(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Stage(StrEnum):
    BUILD = "build"  # a new attempt of the EAS build
    SUBMIT = "submit"  # a new attempt of the store submission (same build)
    API = "api"  # a request or reconcile step re-done after an API error (no attempt used)


class RetryReason(StrEnum):
    BUILD_FAILED = "build_failed"  # a retryable EAS build error; the next attempt is scheduled
    SUBMISSION_FAILED = "submission_failed"  # the submission errored or was refused; retried
    EXPO_REQUEST = "expo_request"  # the Expo client re-sent an idempotent request (transient error)
    EXPO_ERROR = "expo_error"  # a reconcile step failed on Expo's API and is retried in place
    KUBERNETES_ERROR = "kubernetes_error"  # a reconcile step failed on the Kubernetes API / a Secret read
    UNEXPECTED_ERROR = "unexpected_error"  # a bug or an unforeseen exception in a step


# EAS terminal states → result (BuildStatus and SubmissionStatus share these names).
EAS_RESULTS = {"FINISHED": Result.SUCCEEDED, "ERRORED": Result.FAILED, "CANCELED": Result.CANCELLED}
CIRCUIT_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}

PLATFORMS = frozenset(p.value for p in Platform)
RESULTS = frozenset(r.value for r in Result)
PHASES = frozenset(p.value for p in Phase)
STAGES = frozenset(s.value for s in Stage)
RETRY_REASONS = frozenset(r.value for r in RetryReason)
OPERATION_NAMES = frozenset({*OPERATIONS, UPLOAD})
OUTCOMES = frozenset({"ok", *(k.value.lower() for k in ErrorKind)})

PhaseCounts = Callable[[], Mapping[str, int]]
LimiterSource = Callable[[], LimiterSnapshot]
CircuitSource = Callable[[], CircuitState]


def bounded(value: object, allowed: frozenset[str]) -> str:
    """The label value for `value`: itself when in the closed set, else "other"."""
    text = value.value if isinstance(value, StrEnum) else value
    return text if isinstance(text, str) and text in allowed else OTHER


class PhaseTally:
    """Last known phase of every resource the operator sees (uid → phase), for the phase gauge.

    The uid is only a key in memory, never a label. A resource without a status counts as Pending.
    """

    def __init__(self) -> None:
        self._phases: dict[str, str] = {}

    def set(self, uid: str, phase: Phase | str | None) -> None:
        self._phases[uid] = str(phase) if phase else Phase.PENDING.value

    def discard(self, uid: str) -> None:
        self._phases.pop(uid, None)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for phase in self._phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        return counts


class _ScrapeTimeGauges(Collector):
    """Gauges computed when scraped, from the callbacks the operator registered."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        m = self._metrics
        resources, waiting, free, in_flight, circuit = self._families()
        counts = _safely("phase counts", m._phases_source)
        if counts is not None:
            by_phase = dict.fromkeys(sorted(PHASES), 0)
            for phase, count in counts.items():
                label = bounded(phase, PHASES)
                by_phase[label] = by_phase.get(label, 0) + count
            for phase, count in by_phase.items():
                resources.add_metric([phase], count)
            yield resources
        if m._limiter_source is not None:
            snapshot = _safely("limiter snapshot", m._limiter_source)
            if snapshot is not None:
                waiting.add_metric([], snapshot.waiters)
                free.add_metric([], snapshot.free_slots)
                in_flight.add_metric([], snapshot.in_flight)
                yield from (waiting, free, in_flight)
        state = _safely("circuit state", m._circuit_source) if m._circuit_source else m._circuit_last
        if state is not None:
            circuit.add_metric([], CIRCUIT_VALUES.get(state, 0))
            yield circuit

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(f"{PREFIX}_resources", "PublishingBuild resources by phase", labels=["phase"]),
            GaugeMetricFamily(f"{PREFIX}_limiter_waiting", "Resources waiting for a build-start slot"),
            GaugeMetricFamily(
                f"{PREFIX}_limiter_free_slots", "Build starts the limiter would grant right now"
            ),
            GaugeMetricFamily(f"{PREFIX}_builds_in_flight", "Builds holding an in-flight slot"),
            GaugeMetricFamily(
                f"{PREFIX}_circuit_state", "Expo API circuit breaker: 0 closed, 1 half-open, 2 open"
            ),
        )


def _safely(what: str, source: Callable[[], T]) -> T | None:
    # A failing callback drops its own gauges from this scrape, never the whole scrape.
    try:
        return source()
    except Exception:
        log.exception("metrics: reading the %s failed", what)
        return None


class Metrics:
    """The operator's metrics. Every method is cheap, never raises on odd input, and maps label
    values outside their closed set to "other"."""

    def __init__(self, *, version: str = __version__) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.phases = PhaseTally()
        self._phases_source: PhaseCounts = self.phases.counts
        self._limiter_source: LimiterSource | None = None
        self._circuit_source: CircuitSource | None = None
        self._circuit_last: CircuitState = CircuitState.CLOSED

        self.builds_started = Counter(
            f"{PREFIX}_builds_started",
            "EAS builds created (or adopted after a restart)",
            ["platform"],
            registry=r,
        )
        self.builds_completed = Counter(
            f"{PREFIX}_builds_completed",
            "EAS builds that reached a terminal state",
            ["platform", "result"],
            registry=r,
        )
        self.build_duration = Histogram(
            f"{PREFIX}_build_duration_seconds",
            "EAS build duration, created to completed",
            ["platform", "result"],
            buckets=LONG_BUCKETS,
            registry=r,
        )
        self.submission_duration = Histogram(
            f"{PREFIX}_submission_duration_seconds",
            "EAS submission duration, created to completed",
            ["platform", "result"],
            buckets=LONG_BUCKETS,
            registry=r,
        )
        self.submissions_completed = Counter(
            f"{PREFIX}_submissions_completed",
            "EAS submissions that reached a terminal state",
            ["platform", "result"],
            registry=r,
        )
        self.expo_requests = Counter(
            f"{PREFIX}_expo_requests",
            "HTTP requests to Expo's API by GraphQL operation and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.expo_request_duration = Histogram(
            f"{PREFIX}_expo_request_duration_seconds",
            "Duration of one HTTP request to Expo's API",
            ["operation"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            f"{PREFIX}_retries",
            "Retries by stage (build, submit, api) and reason",
            ["stage", "reason"],
            registry=r,
        )
        self.circuit_opened = Counter(
            f"{PREFIX}_circuit_open", "Times the Expo API circuit breaker opened", registry=r
        )
        self.pickup_latency = Histogram(
            f"{PREFIX}_pickup_latency_seconds",
            "Resource creation to its first EAS call (credentials checked, start slot granted)",
            buckets=PICKUP_BUCKETS,
            registry=r,
        )
        self.transitions = Counter(
            f"{PREFIX}_transitions",
            "Phase transitions of PublishingBuild resources",
            ["from_phase", "to_phase"],
            registry=r,
        )
        Info(f"{PREFIX}_operator", "The running publishing-operator", registry=r).info({"version": version})
        r.register(_ScrapeTimeGauges(self))
        # Series for every platform/result exist from the start, so rate() and alerts see zeros.
        for platform in sorted(PLATFORMS):
            self.builds_started.labels(platform)
            for result in sorted(RESULTS):
                self.builds_completed.labels(platform, result)
                self.submissions_completed.labels(platform, result)

    # -- events ------------------------------------------------------------------------------------

    def build_started(self, platform: Platform | str | None) -> None:
        self.builds_started.labels(bounded(platform, PLATFORMS)).inc()

    def build_completed(
        self, platform: Platform | str | None, result: Result | str, duration: float | None
    ) -> None:
        labels = (bounded(platform, PLATFORMS), bounded(result, RESULTS))
        self.builds_completed.labels(*labels).inc()
        if duration is not None and duration >= 0:
            self.build_duration.labels(*labels).observe(duration)

    def submission_completed(
        self, platform: Platform | str | None, result: Result | str, duration: float | None
    ) -> None:
        labels = (bounded(platform, PLATFORMS), bounded(result, RESULTS))
        self.submissions_completed.labels(*labels).inc()
        if duration is not None and duration >= 0:
            self.submission_duration.labels(*labels).observe(duration)

    def transition(self, from_phase: Phase | str | None, to_phase: Phase | str | None) -> None:
        source = NO_PHASE if from_phase is None else bounded(from_phase, PHASES)
        self.transitions.labels(source, bounded(to_phase, PHASES)).inc()

    def retry(self, stage: Stage | str, reason: RetryReason | str) -> None:
        self.retries.labels(bounded(stage, STAGES), bounded(reason, RETRY_REASONS)).inc()

    def expo_request(self, outcome: RequestOutcome) -> None:
        """The `ExpoClient(on_request=...)` hook: one call per HTTP request to Expo."""
        operation = bounded(outcome.operation, OPERATION_NAMES)
        self.expo_requests.labels(operation, bounded(outcome.outcome, OUTCOMES)).inc()
        self.expo_request_duration.labels(operation).observe(max(outcome.duration, 0.0))
        if outcome.attempt > 1:
            self.retry(Stage.API, RetryReason.EXPO_REQUEST)

    def pickup(self, seconds: float) -> None:
        self.pickup_latency.observe(max(seconds, 0.0))

    def circuit(self, state: CircuitState) -> None:
        """A circuit breaker state change (the `CircuitBreaker.on_change` listener)."""
        if state is CircuitState.OPEN:
            self.circuit_opened.inc()
        self._circuit_last = state

    # -- scrape-time sources ---------------------------------------------------------------------------

    def watch_phases(self, source: PhaseCounts) -> None:
        """Count resources by phase from `source()` (phase → count) at every scrape, instead of
        `self.phases`."""
        self._phases_source = source

    def watch_limiter(self, source: LimiterSource) -> None:
        self._limiter_source = source

    def watch_circuit(self, breaker: CircuitBreaker) -> None:
        """Count openings as they happen; read the state (half-open comes by time) at scrape."""
        breaker.on_change(self.circuit)
        self._circuit_source = lambda: breaker.state

    # -- derived from status writes ------------------------------------------------------------------

    def status_changed(
        self, body: Mapping[str, Any], before: PublishingBuildStatus, after: PublishingBuildStatus
    ) -> None:
        """Everything a persisted status change means: phase transition, build started / completed,
        submission completed, attempt retried, pickup latency. Call once per successful status write
        (`body` is the resource, for its platform and creation time)."""
        try:
            self._status_changed(body, before, after)
        except Exception:
            # Metrics must never break a reconcile step.
            log.exception("metrics: recording a status change failed")

    def _status_changed(
        self, body: Mapping[str, Any], before: PublishingBuildStatus, after: PublishingBuildStatus
    ) -> None:
        platform = _platform_of(body)
        if after.phase != before.phase:
            self.transition(before.phase, after.phase)
        if before.start_time is None and after.start_time is not None:
            created = _created_at(body)
            if created is not None:
                self.pickup((after.start_time - created).total_seconds())

        old_id = before.build.id if before.build else None
        new_id = after.build.id if after.build else None
        if new_id is not None and new_id != old_id:
            self.build_started(platform)
        for result, duration in _completions(before, after, before.build, after.build, "build_id"):
            self.build_completed(platform, result, duration)
        for result, duration in _completions(
            before, after, before.submission, after.submission, "submission_id"
        ):
            self.submission_completed(platform, result, duration)

        if (after.attempt or 1) > (before.attempt or 1) and after.next_retry_time is not None:
            if after.phase is Phase.SUBMITTING:
                self.retry(Stage.SUBMIT, RetryReason.SUBMISSION_FAILED)
            else:
                self.retry(Stage.BUILD, RetryReason.BUILD_FAILED)

    # -- exposition ----------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in this registry."""
        return generate_latest(self.registry)


def _platform_of(body: Mapping[str, Any]) -> str | None:
    spec = body.get("spec")
    app = spec.get("app") if isinstance(spec, Mapping) else None
    platform = app.get("platform") if isinstance(app, Mapping) else None
    return platform if isinstance(platform, str) else None


def _created_at(body: Mapping[str, Any]) -> datetime | None:
    try:
        return ObjectMeta.model_validate(body.get("metadata") or {}).creation_timestamp
    except ValidationError:
        return None


def _span(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def _completions(
    before: PublishingBuildStatus,
    after: PublishingBuildStatus,
    old: BuildStatus | SubmissionStatus | None,
    new: BuildStatus | SubmissionStatus | None,
    history_key: Literal["build_id", "submission_id"],
) -> list[tuple[Result, float | None]]:
    """EAS work (a build or a submission) this write saw reach a terminal state: result, duration."""
    done: list[tuple[Result, float | None]] = []
    old_id = old.id if old else None
    new_id = new.id if new else None
    if new is not None and new_id is not None:
        result = EAS_RESULTS.get(new.status or "")
        already = old is not None and old_id == new_id and old.status in EAS_RESULTS
        if result is not None and not already:
            done.append((result, _span(new.created_at, new.completed_at)))
    if old is not None and old_id is not None and new_id != old_id and old.status not in EAS_RESULTS:
        # A retried attempt's work leaves status in the same write that saw it fail: its history
        # entry (written by that write) says how it ended.
        for entry in reversed(after.history):
            entry_id = entry.build_id if history_key == "build_id" else entry.submission_id
            if entry_id == old_id and entry not in before.history:
                done.append(
                    (
                        _ATTEMPT_RESULTS.get(entry.result, Result.FAILED),
                        _span(old.created_at, entry.finished_at),
                    )
                )
                break
    return done


_ATTEMPT_RESULTS = {
    AttemptResult.SUCCEEDED: Result.SUCCEEDED,
    AttemptResult.FAILED: Result.FAILED,
    AttemptResult.CANCELLED: Result.CANCELLED,
}


# -- the /metrics endpoint -------------------------------------------------------------------------------


class MetricsServer:
    """`/metrics` over HTTP on the operator's event loop (aiohttp)."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self._runner = runner
        self.host = host
        self.port = port  # the bound port (the OS's choice when asked for 0)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/metrics"

    async def stop(self) -> None:
        await self._runner.cleanup()


async def start_metrics_server(metrics: Metrics, *, host: str = "0.0.0.0", port: int = 0) -> MetricsServer:
    """Serve `/metrics` on host:port; port 0 binds a free port (read it from `.port`)."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    addresses = runner.addresses  # the sockets actually bound: the real port when asked for 0
    bound = int(addresses[0][1]) if addresses else port
    return MetricsServer(runner, host, bound)


@asynccontextmanager
async def serve_metrics(
    metrics: Metrics, port: int, host: str = "0.0.0.0"
) -> AsyncIterator[MetricsServer | None]:
    """Serve `/metrics` while the block runs; `port` 0 means metrics are off (yields None)."""
    if port == 0:
        yield None
        return
    server = await start_metrics_server(metrics, host=host, port=port)
    log.info("metrics on %s", server.url)
    try:
        yield server
    finally:
        await server.stop()
