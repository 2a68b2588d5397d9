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

Gauges for the limiter, the circuit breaker, the probes' numbers and resources by phase are computed
by a custom collector when Prometheus scrapes, from callbacks; the HTTP handler runs on the operator's
event loop, so those callbacks read the single-threaded limiter safely. Resources by phase and the
age of the oldest resource in each phase come from the resources themselves (the watch stream's
copies, re-listed at every start), never from counters kept in memory, so they are right after a
restart.

What the Prometheus ecosystem expects beside the operator's own numbers: the process and Python
collectors (`process_*`, `python_*`) on the same registry, the circuit state as a StateSet, content
negotiation (OpenMetrics for a scraper that asks for it, the text format otherwise) and gzip.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple, TypeVar

import prometheus_client
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.exposition import choose_encoder, generate_latest, gzip_accepted
from prometheus_client.registry import Collector
from pydantic import ValidationError

from publishing_operator import __version__
from publishing_operator.api import (
    COND_CREDENTIALS,
    COND_SUCCEEDED,
    FINISHED_PHASES,
    REASONS,
    AttemptResult,
    BuildStatus,
    ConditionStatus,
    ObjectMeta,
    Phase,
    Platform,
    PublishingBuildStatus,
    Reason,
    SubmissionStatus,
)
from publishing_operator.circuit import CircuitBreaker, CircuitState
from publishing_operator.expo.archive import UPLOAD
from publishing_operator.expo.errors import ErrorKind
from publishing_operator.expo.operations import OPERATIONS
from publishing_operator.expo.transport import RequestOutcome
from publishing_operator.health import Health, HealthSnapshot
from publishing_operator.httpserve import HttpServer, serve_http, start_http_server
from publishing_operator.limiter import LimiterSnapshot

# Counters and histograms would each export a `<name>_created` series too (the time the series was
# made): a second series per label set that dashboards and alerts never use. Off for the whole
# process (a prometheus-client switch), in code, so it holds outside the image's environment too.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library

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
PHASE_RESULTS = {
    Phase.SUCCEEDED: Result.SUCCEEDED,
    Phase.FAILED: Result.FAILED,
    Phase.CANCELLED: Result.CANCELLED,
}

PLATFORMS = frozenset(p.value for p in Platform)
RESULTS = frozenset(r.value for r in Result)
PHASES = frozenset(p.value for p in Phase)
# The Succeeded condition's reasons once it is True or False: why a resource finished.
FINAL_REASONS = frozenset(
    r.value
    for r, info in REASONS.items()
    if info.condition == COND_SUCCEEDED and info.status is not ConditionStatus.UNKNOWN
)
# Phases whose oldest resource is worth an age: everything not finished.
AGED_PHASES = tuple(p.value for p in Phase if p not in FINISHED_PHASES)
CIRCUIT_STATES = tuple(s.value for s in CircuitState)
STAGES = frozenset(s.value for s in Stage)
RETRY_REASONS = frozenset(r.value for r in RetryReason)
OPERATION_NAMES = frozenset({*OPERATIONS, UPLOAD})
OUTCOMES = frozenset({"ok", *(k.value.lower() for k in ErrorKind)})

PhaseCounts = Callable[[], Mapping[str, int]]
LimiterSource = Callable[[], LimiterSnapshot]
CircuitSource = Callable[[], CircuitState]
HealthSource = Callable[[], HealthSnapshot]


def _result_of_reason(reason: str) -> str:
    if reason == Reason.SUCCEEDED:
        return Result.SUCCEEDED.value
    if reason == Reason.CANCELLED:
        return Result.CANCELLED.value
    return Result.FAILED.value


def bounded(value: object, allowed: frozenset[str]) -> str:
    """The label value for `value`: itself when in the closed set, else "other"."""
    text = value.value if isinstance(value, StrEnum) else value
    return text if isinstance(text, str) and text in allowed else OTHER


class _Tracked(NamedTuple):
    phase: str
    since: float | None  # epoch seconds: since when the resource has been in this phase's wait


class PhaseTally:
    """Every resource the operator sees (uid → phase, and since when), from its latest copy on the
    watch stream: the phase gauge and the oldest-in-phase ages are computed from it at scrape time.

    The uid is only a key in memory, never a label. A resource without a status counts as Pending.
    After a restart kopf lists every resource again, so the tally is whole before the first scrape.
    """

    def __init__(self) -> None:
        self._tracked: dict[str, _Tracked] = {}

    def observe(self, body: Mapping[str, Any], status: PublishingBuildStatus) -> None:
        """A watch event's copy of a resource (its status already parsed)."""
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if uid:
            phase = status.phase or Phase.PENDING
            since = waiting_since(body, status, phase)
            self._tracked[uid] = _Tracked(phase.value, since.timestamp() if since else None)

    def set(self, uid: str, phase: Phase | str | None) -> None:
        """Phase only, when no copy of the resource is at hand (no age for it)."""
        self._tracked[uid] = _Tracked(str(phase) if phase else Phase.PENDING.value, None)

    def discard(self, uid: str) -> None:
        self._tracked.pop(uid, None)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tracked in self._tracked.values():
            counts[tracked.phase] = counts.get(tracked.phase, 0) + 1
        return counts

    def oldest(self) -> dict[str, float]:
        """Phase → the earliest `since` among its resources (epoch seconds), where known."""
        oldest: dict[str, float] = {}
        for phase, since in self._tracked.values():
            if since is not None and since < oldest.get(phase, float("inf")):
                oldest[phase] = since
        return oldest


def waiting_since(body: Mapping[str, Any], status: PublishingBuildStatus, phase: Phase) -> datetime | None:
    """Since when the resource has been waiting on its current phase, measured as the matching
    histogram measures it, so its age compares with that history: Building from the EAS build's
    creation (build_duration_seconds), Submitting from the submission's creation
    (submission_duration_seconds), Queued from when it could first start (after credentials and any
    retry backoff: the limiter's wait), Pending from creation or the last attempt's end. None when
    finished or unknown."""
    if phase in FINISHED_PHASES:
        return None
    if phase is Phase.BUILDING:
        build = status.build
        return (build.created_at or build.requested_at) if build else None
    if phase is Phase.SUBMITTING:
        sub, build = status.submission, status.build
        if sub is not None and (sub.created_at or sub.requested_at):
            return sub.created_at or sub.requested_at
        return build.completed_at if build else None
    marks = [_created_at(body)]
    marks += [entry.finished_at for entry in status.history[-1:]]
    if phase is Phase.QUEUED:
        credentials = status.condition(COND_CREDENTIALS)
        if credentials is not None and credentials.status is ConditionStatus.TRUE:
            marks.append(credentials.last_transition_time)
        marks.append(status.next_retry_time)
    known = [m for m in marks if m is not None]
    return max(known) if known else None


class _ScrapeTimeGauges(Collector):
    """Families computed when scraped, from the callbacks the operator registered."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        # The families this collector can yield, for registration-time name clash checks.
        return [
            *self._resource_families(),
            *self._limiter_families(),
            self._circuit_family({}),
            self._health_families()[0],
            *self._health_families()[1],
        ]

    def collect(self) -> Iterable[Metric]:
        m = self._metrics
        yield from self._resources(m)
        if m._limiter_source is not None:
            snapshot = _safely("limiter snapshot", m._limiter_source)
            if snapshot is not None:
                yield from self._limiter(snapshot)
        state = _safely("circuit state", m._circuit_source) if m._circuit_source else m._circuit_last
        if state is not None:
            yield self._circuit_family({s: s == state for s in CIRCUIT_STATES})
        if m._health_source is not None:
            health = _safely("health snapshot", m._health_source)
            if health is not None:
                yield from self._health(health)

    # -- resources ---------------------------------------------------------------------------------

    @staticmethod
    def _resource_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(f"{PREFIX}_resources", "PublishingBuild resources by phase", labels=["phase"]),
            GaugeMetricFamily(
                f"{PREFIX}_oldest_in_phase_seconds",
                "Age of the oldest resource in each unfinished phase: Building since the EAS build was"
                " created, Submitting since the submission was, Queued since it could start, Pending"
                " since creation or its last attempt",
                labels=["phase"],
            ),
        )

    def _resources(self, m: Metrics) -> Iterable[Metric]:
        resources, oldest = self._resource_families()
        counts = _safely("phase counts", m._phases_source)
        if counts is not None:
            by_phase = dict.fromkeys(sorted(PHASES), 0)
            for phase, count in counts.items():
                label = bounded(phase, PHASES)
                by_phase[label] = by_phase.get(label, 0) + count
            for phase, count in by_phase.items():
                resources.add_metric([phase], count)
            yield resources
        since = _safely("oldest resources", m.phases.oldest)
        if since is not None:
            now = m._wall_clock()
            for phase in AGED_PHASES:
                oldest.add_metric([phase], max(0.0, now - since[phase]) if phase in since else 0.0)
            yield oldest

    # -- limiter -----------------------------------------------------------------------------------

    @staticmethod
    def _limiter_families() -> tuple[
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    ]:
        return (
            GaugeMetricFamily(f"{PREFIX}_limiter_waiting", "Resources waiting for a build-start slot"),
            GaugeMetricFamily(
                f"{PREFIX}_limiter_free_slots", "Build starts the limiter would grant right now"
            ),
            GaugeMetricFamily(f"{PREFIX}_builds_in_flight", "Builds holding an in-flight slot"),
            GaugeMetricFamily(
                f"{PREFIX}_limiter_oldest_wait_seconds",
                "How long the longest waiting resource has waited for a start slot (0: none waits)",
            ),
            GaugeMetricFamily(
                f"{PREFIX}_limiter_last_grant_timestamp_seconds",
                "When the limiter last granted a build start (its creation before the first)",
            ),
            HistogramMetricFamily(
                f"{PREFIX}_limiter_wait_seconds",
                "Time from a resource's first request for a start slot to its grant (0 when granted at once)",
            ),
        )

    def _limiter(self, snapshot: LimiterSnapshot) -> Iterable[Metric]:
        waiting, free, in_flight, oldest, last_grant, _ = self._limiter_families()
        waiting.add_metric([], snapshot.waiters)
        free.add_metric([], snapshot.free_slots)
        in_flight.add_metric([], snapshot.in_flight)
        oldest.add_metric([], snapshot.oldest_wait_seconds)
        last_grant.add_metric([], snapshot.last_grant_at)
        waits = snapshot.waits
        buckets: list[tuple[str, float]] = [
            (_le(bound), count) for bound, count in zip(waits.bounds, waits.cumulative, strict=True)
        ]
        buckets.append(("+Inf", waits.count))
        histogram = HistogramMetricFamily(
            f"{PREFIX}_limiter_wait_seconds",
            "Time from a resource's first request for a start slot to its grant (0 when granted at once)",
            buckets=buckets,
            sum_value=waits.sum,
        )
        return (waiting, free, in_flight, oldest, last_grant, histogram)

    # -- circuit -----------------------------------------------------------------------------------

    @staticmethod
    def _circuit_family(states: dict[str, bool]) -> StateSetMetricFamily:
        return StateSetMetricFamily(
            f"{PREFIX}_circuit_state",
            "Expo API circuit breaker: 1 for the current state (closed, open, half_open)",
            value=states,
        )

    # -- probes ------------------------------------------------------------------------------------

    @staticmethod
    def _health_families() -> tuple[CounterMetricFamily, list[GaugeMetricFamily]]:
        return (
            CounterMetricFamily(f"{PREFIX}_watch_events", "PublishingBuild watch events received"),
            [
                GaugeMetricFamily(
                    f"{PREFIX}_watch_unechoed_writes",
                    "Writes of the operator not yet seen back on the watch stream",
                ),
                GaugeMetricFamily(
                    f"{PREFIX}_watch_echo_lag_seconds",
                    "Age of the oldest write of the operator not yet seen back on the watch stream (0: none)",
                ),
                GaugeMetricFamily(f"{PREFIX}_steps_running", "Reconcile steps running now"),
                GaugeMetricFamily(
                    f"{PREFIX}_step_longest_running_seconds",
                    "How long the longest running reconcile step has run (0: none runs)",
                ),
                GaugeMetricFamily(
                    f"{PREFIX}_ready", "1 when the operator is ready (started, not shutting down)"
                ),
            ],
        )

    def _health(self, snapshot: HealthSnapshot) -> Iterable[Metric]:
        events, gauges = self._health_families()
        events.add_metric([], snapshot.watch_events)
        numbers = (
            snapshot.unechoed_writes,
            snapshot.echo_lag_seconds,
            snapshot.steps_running,
            snapshot.longest_step_seconds,
            1 if snapshot.ready else 0,
        )
        for family, number in zip(gauges, numbers, strict=True):
            family.add_metric([], number)
        return (events, *gauges)


def _le(bound: float) -> str:
    # The same spelling prometheus-client gives its own histograms' buckets: "1.0", "300.0".
    return repr(float(bound))


def _safely(what: str, source: Callable[[], T]) -> T | None:
    # A failing callback drops its own families from this scrape, never the whole scrape.
    try:
        return source()
    except Exception:
        log.exception("metrics: reading the %s failed", what)
        return None


class Metrics:
    """The operator's metrics. Every method is cheap, never raises on odd input, and maps label
    values outside their closed set to "other"."""

    def __init__(self, *, version: str = __version__, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.phases = PhaseTally()
        self._wall_clock = clock  # epoch seconds, the scale of resource timestamps
        self._phases_source: PhaseCounts = self.phases.counts
        self._limiter_source: LimiterSource | None = None
        self._circuit_source: CircuitSource | None = None
        self._circuit_last: CircuitState = CircuitState.CLOSED
        self._health_source: HealthSource | None = None

        # What every Python exporter has: process_* (CPU, memory, file descriptors, start time) and
        # python_* (version, garbage collector). On this registry, not only on the global one.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

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
        self.expo_last_request = Gauge(
            f"{PREFIX}_expo_last_request_timestamp_seconds",
            "When the last HTTP request to Expo's API ended (the operator's start before the first)",
            registry=r,
        )
        self.expo_last_request.set(self._wall_clock())
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
        self.resources_finished = Counter(
            f"{PREFIX}_resources_finished",
            "PublishingBuild resources that finished, by result and the Succeeded condition's reason",
            ["platform", "result", "reason"],
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
            for reason in sorted(FINAL_REASONS):
                self.resources_finished.labels(platform, _result_of_reason(reason), reason)

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
        self.expo_last_request.set(self._wall_clock())
        if outcome.attempt > 1:
            self.retry(Stage.API, RetryReason.EXPO_REQUEST)

    def resource_finished(self, platform: Platform | str | None, phase: Phase, reason: str | None) -> None:
        result = PHASE_RESULTS.get(phase)
        if result is not None:
            self.resources_finished.labels(
                bounded(platform, PLATFORMS), result.value, bounded(reason, FINAL_REASONS)
            ).inc()

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

    def watch_health(self, health: Health) -> None:
        """The probes' numbers (watch echo, steps running) at every scrape."""
        self._health_source = health.snapshot

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
            if after.phase in FINISHED_PHASES and before.phase not in FINISHED_PHASES:
                succeeded = after.condition(COND_SUCCEEDED)
                self.resource_finished(platform, after.phase, succeeded.reason if succeeded else None)
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
        """The Prometheus text format (0.0.4) of everything in this registry."""
        return generate_latest(self.registry)

    def render(self, accept: str = "", accept_encoding: str = "") -> Rendered:
        """The scrape answer for these request headers: OpenMetrics when the scraper asks for it
        (Prometheus does, first), the text format otherwise; gzip when it accepts gzip."""
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        if gzip_accepted(accept_encoding):
            return Rendered(gzip.compress(body), content_type, "gzip")
        return Rendered(body, content_type, None)


class Rendered(NamedTuple):
    body: bytes
    content_type: str
    content_encoding: str | None


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


def metrics_handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        rendered = metrics.render(
            request.headers.get("Accept", ""), request.headers.get("Accept-Encoding", "")
        )
        headers = {"Content-Type": rendered.content_type, "Vary": "Accept, Accept-Encoding"}
        if rendered.content_encoding:
            headers["Content-Encoding"] = rendered.content_encoding
        return web.Response(body=rendered.body, headers=headers)

    return handle


async def start_metrics_server(metrics: Metrics, *, host: str = "0.0.0.0", port: int = 0) -> HttpServer:
    """Serve `/metrics` on host:port; port 0 binds a free port (read it from `.port`)."""
    return await start_http_server({"/metrics": metrics_handler(metrics)}, host=host, port=port)


@asynccontextmanager
async def serve_metrics(
    metrics: Metrics, port: int, host: str = "0.0.0.0"
) -> AsyncIterator[HttpServer | None]:
    """Serve `/metrics` while the block runs; `port` 0 means metrics are off (yields None)."""
    async with serve_http({"/metrics": metrics_handler(metrics)}, port, host, what="metrics") as server:
        yield server
