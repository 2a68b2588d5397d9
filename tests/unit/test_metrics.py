"""Prometheus metrics: every metric moves as expected, labels stay in their closed sets, gauges are
read at scrape time, and `/metrics` serves the exposition format over a real socket."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families

from publishing_operator import lifecycle as lc
from publishing_operator.api import Phase, Platform, PublishingBuildSpec, PublishingBuildStatus, Reason
from publishing_operator.circuit import CircuitBreaker, CircuitState
from publishing_operator.expo.archive import UPLOAD
from publishing_operator.expo.operations import OPERATIONS
from publishing_operator.expo.transport import RequestOutcome
from publishing_operator.health import Health
from publishing_operator.limiter import Denial, StartLimiter
from publishing_operator.metrics import (
    FINAL_REASONS,
    OUTCOMES,
    PHASES,
    PLATFORMS,
    RESULTS,
    RETRY_REASONS,
    STAGES,
    Metrics,
    serve_metrics,
    start_metrics_server,
    waiting_since,
)
from tests.fixtures.builders import spec

T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
UID = "0f1e2d3c-aaaa-bbbb-cccc-000000000001"
TOKEN = "expo_pat_9fJx3kQ2mV8sLw1Zr7"  # what a leaked token would look like


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(version="1.2.3")


def value(m: Metrics, name: str, **labels: str) -> float:
    sample = m.registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def outcome(
    operation: str = "BuildById", result: str = "ok", *, duration: float = 0.2, attempt: int = 1
) -> RequestOutcome:
    return RequestOutcome(
        operation=operation,
        outcome=result,
        duration=duration,
        http_status=200,
        request_id="req-123",
        attempt=attempt,
    )


def label_values(m: Metrics) -> Iterator[tuple[str, str, str]]:
    """(sample name, label, value) of everything the registry exposes."""
    for family in m.registry.collect():
        for sample in family.samples:
            for label, text in sample.labels.items():
                yield sample.name, label, text


# -- counters and histograms ---------------------------------------------------------------------------


def test_builds_started_and_completed_by_platform_and_result(metrics: Metrics) -> None:
    metrics.build_started(Platform.IOS)
    metrics.build_started("android")
    metrics.build_started("android")
    metrics.build_completed("ios", "succeeded", 1200.0)
    metrics.build_completed(Platform.ANDROID, "failed", 45.0)

    assert value(metrics, "publishing_builds_started_total", platform="ios") == 1
    assert value(metrics, "publishing_builds_started_total", platform="android") == 2
    assert value(metrics, "publishing_builds_completed_total", platform="ios", result="succeeded") == 1
    assert value(metrics, "publishing_builds_completed_total", platform="android", result="failed") == 1
    histogram = "publishing_build_duration_seconds"
    assert value(metrics, f"{histogram}_count", platform="ios", result="succeeded") == 1
    assert value(metrics, f"{histogram}_sum", platform="ios", result="succeeded") == 1200.0
    assert value(metrics, f"{histogram}_bucket", platform="ios", result="succeeded", le="900.0") == 0
    assert value(metrics, f"{histogram}_bucket", platform="ios", result="succeeded", le="1200.0") == 1
    assert value(metrics, f"{histogram}_bucket", platform="android", result="failed", le="30.0") == 0
    assert value(metrics, f"{histogram}_bucket", platform="android", result="failed", le="60.0") == 1


def test_duration_buckets_span_30_seconds_to_4_hours(metrics: Metrics) -> None:
    metrics.build_completed("ios", "succeeded", 100.0)
    les = [
        s.labels["le"]
        for family in metrics.registry.collect()
        if family.name == "publishing_build_duration_seconds"
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels["platform"] == "ios" and s.labels["result"] == "succeeded"
    ]
    assert les[0] == "30.0"
    assert les[-2:] == ["14400.0", "+Inf"]


def test_every_platform_and_result_exists_from_the_start(metrics: Metrics) -> None:
    # rate() and alerts need the zero before the first increment.
    for platform in ("ios", "android"):
        assert (
            metrics.registry.get_sample_value("publishing_builds_started_total", {"platform": platform}) == 0
        )
        for result in ("succeeded", "failed", "cancelled"):
            labels = {"platform": platform, "result": result}
            assert metrics.registry.get_sample_value("publishing_builds_completed_total", labels) == 0


def test_unknown_or_missing_duration_counts_the_build_without_a_histogram_sample(metrics: Metrics) -> None:
    metrics.build_completed("ios", "cancelled", None)
    metrics.build_completed("ios", "cancelled", -5.0)  # clock skew between EAS timestamps
    assert value(metrics, "publishing_builds_completed_total", platform="ios", result="cancelled") == 2
    assert value(metrics, "publishing_build_duration_seconds_count", platform="ios", result="cancelled") == 0


def test_submission_duration(metrics: Metrics) -> None:
    metrics.submission_completed("android", "succeeded", 95.0)
    assert (
        value(metrics, "publishing_submissions_completed_total", platform="android", result="succeeded") == 1
    )
    labels = {"platform": "android", "result": "succeeded"}
    assert value(metrics, "publishing_submission_duration_seconds_count", **labels) == 1
    assert value(metrics, "publishing_submission_duration_seconds_sum", **labels) == 95.0
    assert value(metrics, "publishing_submission_duration_seconds_bucket", **labels, le="120.0") == 1


def test_transitions_and_retries(metrics: Metrics) -> None:
    metrics.transition(None, Phase.PENDING)
    metrics.transition(Phase.BUILDING, "Submitting")
    metrics.transition(Phase.BUILDING, "Submitting")
    metrics.retry("build", "build_failed")
    metrics.retry("api", "kubernetes_error")
    assert value(metrics, "publishing_transitions_total", from_phase="none", to_phase="Pending") == 1
    assert value(metrics, "publishing_transitions_total", from_phase="Building", to_phase="Submitting") == 2
    assert value(metrics, "publishing_retries_total", stage="build", reason="build_failed") == 1
    assert value(metrics, "publishing_retries_total", stage="api", reason="kubernetes_error") == 1


def test_expo_requests_by_operation_and_outcome(metrics: Metrics) -> None:
    metrics.expo_request(outcome("BuildById", "ok", duration=0.3))
    metrics.expo_request(outcome("BuildById", "transient", duration=2.0))
    metrics.expo_request(outcome("BuildById", "ok", duration=0.4, attempt=2))
    metrics.expo_request(outcome(UPLOAD, "ok", duration=40.0))

    assert value(metrics, "publishing_expo_requests_total", operation="BuildById", outcome="ok") == 2
    assert value(metrics, "publishing_expo_requests_total", operation="BuildById", outcome="transient") == 1
    assert value(metrics, "publishing_expo_requests_total", operation=UPLOAD, outcome="ok") == 1
    assert value(metrics, "publishing_expo_request_duration_seconds_count", operation="BuildById") == 3
    assert value(
        metrics, "publishing_expo_request_duration_seconds_sum", operation="BuildById"
    ) == pytest.approx(2.7)
    # The second attempt of a request is a retry of the API stage.
    assert value(metrics, "publishing_retries_total", stage="api", reason="expo_request") == 1


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_expo_operation_is_its_own_label(metrics: Metrics, operation: str) -> None:
    metrics.expo_request(outcome(operation))
    assert value(metrics, "publishing_expo_requests_total", operation=operation, outcome="ok") == 1


def test_pickup_latency(metrics: Metrics) -> None:
    metrics.pickup(12.0)
    metrics.pickup(-1.0)  # skew: counted as 0
    assert value(metrics, "publishing_pickup_latency_seconds_count") == 2
    assert value(metrics, "publishing_pickup_latency_seconds_sum") == 12.0
    assert value(metrics, "publishing_pickup_latency_seconds_bucket", le="1.0") == 1
    assert value(metrics, "publishing_pickup_latency_seconds_bucket", le="15.0") == 2


def test_operator_info_carries_the_version(metrics: Metrics) -> None:
    assert value(metrics, "publishing_operator_info", version="1.2.3") == 1


def test_two_instances_keep_separate_numbers() -> None:
    a, b = Metrics(), Metrics()
    a.build_started("ios")
    assert value(a, "publishing_builds_started_total", platform="ios") == 1
    assert value(b, "publishing_builds_started_total", platform="ios") == 0


# -- bounded labels ---------------------------------------------------------------------------------------


def test_values_outside_the_closed_sets_become_other(metrics: Metrics) -> None:
    metrics.build_started("windows-phone")
    metrics.build_started(None)
    metrics.build_completed("ios", "exploded", 10.0)
    metrics.transition("Paused", "Building")
    metrics.retry("deploy", "because")
    metrics.expo_request(outcome(TOKEN, f"Bearer {TOKEN}"))

    assert value(metrics, "publishing_builds_started_total", platform="other") == 2
    assert value(metrics, "publishing_builds_completed_total", platform="ios", result="other") == 1
    assert value(metrics, "publishing_transitions_total", from_phase="other", to_phase="Building") == 1
    assert value(metrics, "publishing_retries_total", stage="other", reason="other") == 1
    assert value(metrics, "publishing_expo_requests_total", operation="other", outcome="other") == 1


def test_a_token_never_reaches_the_exposition(metrics: Metrics) -> None:
    # Operations are a closed set: a token passed where an operation name belongs is "other".
    metrics.expo_request(outcome(TOKEN, "ok"))
    metrics.expo_request(
        RequestOutcome(
            operation="BuildById",
            outcome="auth",
            duration=0.1,
            http_status=401,
            request_id=TOKEN,
            attempt=1,
            error_code=TOKEN,
        )
    )
    metrics.retry(TOKEN, TOKEN)
    metrics.build_started(TOKEN)
    assert TOKEN not in metrics.exposition().decode()


def test_every_label_value_comes_from_a_closed_set(metrics: Metrics) -> None:
    for junk in ("x" * 300, TOKEN, "ns/name", "", "b1f0c2d4-uid"):
        metrics.build_started(junk)
        metrics.build_completed(junk, junk, 1.0)
        metrics.submission_completed(junk, junk, 1.0)
        metrics.transition(junk, junk)
        metrics.retry(junk, junk)
        metrics.expo_request(outcome(junk, junk))
        metrics.resource_finished(junk, Phase.FAILED, junk)
    metrics.phases.set("uid-1", "Weird")
    metrics.watch_circuit(CircuitBreaker())
    allowed = {
        "platform": PLATFORMS,
        "result": RESULTS,
        "phase": PHASES,
        "from_phase": PHASES | {"none"},
        "to_phase": PHASES,
        "stage": STAGES,
        "reason": RETRY_REASONS,
        "operation": frozenset({*OPERATIONS, UPLOAD}),
        "outcome": OUTCOMES,
        "publishing_circuit_state": frozenset(s.value for s in CircuitState),
    }
    by_metric = {"publishing_resources_finished_total": {"reason": FINAL_REASONS}}
    # Labels of the process and Python collectors: fixed by prometheus-client, not ours.
    library = {"le", "version", "implementation", "major", "minor", "patchlevel", "generation"}
    seen = set()
    for name, label, text in label_values(metrics):
        if label in library:
            continue
        closed = by_metric.get(name, {}).get(label, allowed[label])
        assert text in closed | {"other"}, (name, label, text)
        seen.add(label)
    assert seen == set(allowed)


# -- scrape-time gauges ------------------------------------------------------------------------------------


def test_resources_by_phase_are_read_from_the_callback_at_scrape_time(metrics: Metrics) -> None:
    counts: dict[str, int] = {"Building": 2}
    calls = 0

    def source() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return counts

    metrics.watch_phases(source)
    assert calls == 0  # nothing is read before a scrape
    assert value(metrics, "publishing_resources", phase="Building") == 2
    assert value(metrics, "publishing_resources", phase="Succeeded") == 0
    counts.update({"Building": 1, "Succeeded": 7, "Mystery": 2, "Unknown": 1})
    assert value(metrics, "publishing_resources", phase="Building") == 1
    assert value(metrics, "publishing_resources", phase="Succeeded") == 7
    assert value(metrics, "publishing_resources", phase="other") == 3
    assert calls >= 2


def test_default_phase_source_is_the_tally(metrics: Metrics) -> None:
    metrics.phases.set("uid-1", Phase.BUILDING)
    metrics.phases.set("uid-2", Phase.BUILDING)
    metrics.phases.set("uid-3", None)  # no status yet
    assert value(metrics, "publishing_resources", phase="Building") == 2
    assert value(metrics, "publishing_resources", phase="Pending") == 1
    metrics.phases.set("uid-1", Phase.SUCCEEDED)
    metrics.phases.discard("uid-2")
    metrics.phases.discard("never-seen")
    assert value(metrics, "publishing_resources", phase="Building") == 0
    assert value(metrics, "publishing_resources", phase="Succeeded") == 1
    assert "uid-1" not in metrics.exposition().decode()


def test_limiter_gauges_follow_the_limiter(metrics: Metrics) -> None:
    now = [1_800_000_000.0]
    limiter = StartLimiter(2, 60.0, max_in_flight=0, clock=lambda: now[0])
    metrics.watch_limiter(limiter.snapshot)
    assert value(metrics, "publishing_limiter_free_slots") == 2
    assert value(metrics, "publishing_builds_in_flight") == 0
    limiter.try_acquire("a.1")
    limiter.try_acquire("b.1")
    assert isinstance(limiter.try_acquire("c.1"), Denial)
    assert value(metrics, "publishing_limiter_waiting") == 1
    assert value(metrics, "publishing_limiter_free_slots") == 0
    assert value(metrics, "publishing_builds_in_flight") == 2
    limiter.release_in_flight("a.1")
    now[0] += 61  # the window passes: both rate slots free again
    assert value(metrics, "publishing_limiter_free_slots") == 2
    assert value(metrics, "publishing_builds_in_flight") == 1


def test_limiter_wait_histogram_and_oldest_waiter(metrics: Metrics) -> None:
    now = [1_800_000_000.0]
    limiter = StartLimiter(1, 60.0, clock=lambda: now[0])
    metrics.watch_limiter(limiter.snapshot)
    limiter.try_acquire("a.1")
    limiter.try_acquire("b.1")
    now[0] += 45
    assert value(metrics, "publishing_limiter_oldest_wait_seconds") == 45
    now[0] += 15
    limiter.try_acquire("b.1")  # granted after 60 s
    assert value(metrics, "publishing_limiter_oldest_wait_seconds") == 0
    assert value(metrics, "publishing_limiter_wait_seconds_count") == 2
    assert value(metrics, "publishing_limiter_wait_seconds_sum") == 60
    assert value(metrics, "publishing_limiter_wait_seconds_bucket", le="1.0") == 1
    assert value(metrics, "publishing_limiter_wait_seconds_bucket", le="60.0") == 2
    assert value(metrics, "publishing_limiter_wait_seconds_bucket", le="+Inf") == 2


def test_resources_by_phase_and_the_oldest_in_each_come_from_the_resources() -> None:
    now = [T0.timestamp() + 3600]
    metrics = Metrics(clock=lambda: now[0])
    s = spec()
    building = PublishingBuildStatus.model_validate(
        {"phase": "Building", "build": {"id": "b1", "createdAt": "2026-11-27T12:10:00Z"}}
    )
    waiting = PublishingBuildStatus.model_validate(
        {
            "phase": "Queued",
            "conditions": [
                {
                    "type": "CredentialsReady",
                    "status": "True",
                    "reason": "Validated",
                    "message": "ok",
                    "lastTransitionTime": "2026-11-27T12:30:00Z",
                }
            ],
        }
    )
    backoff = PublishingBuildStatus.model_validate(
        {"phase": "Queued", "nextRetryTime": "2026-11-27T13:20:00Z"}  # not yet due: waits 0 s
    )
    metrics.phases.observe({**body(s), "metadata": {"uid": "u1"}}, building)
    metrics.phases.observe({**body(s), "metadata": {"uid": "u2"}}, waiting)
    metrics.phases.observe({**body(s), "metadata": {"uid": "u3"}}, backoff)
    metrics.phases.observe(body(s, created=T0 + timedelta(minutes=50)), PublishingBuildStatus())
    metrics.phases.observe({"metadata": {}}, building)  # no uid: not a resource
    assert value(metrics, "publishing_resources", phase="Building") == 1
    assert value(metrics, "publishing_resources", phase="Queued") == 2
    assert value(metrics, "publishing_resources", phase="Pending") == 1
    assert value(metrics, "publishing_oldest_in_phase_seconds", phase="Building") == 50 * 60
    assert value(metrics, "publishing_oldest_in_phase_seconds", phase="Queued") == 30 * 60
    assert value(metrics, "publishing_oldest_in_phase_seconds", phase="Pending") == 10 * 60
    assert value(metrics, "publishing_oldest_in_phase_seconds", phase="Submitting") == 0
    assert (
        metrics.registry.get_sample_value("publishing_oldest_in_phase_seconds", {"phase": "Failed"}) is None
    )
    metrics.phases.discard("u1")
    assert value(metrics, "publishing_oldest_in_phase_seconds", phase="Building") == 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Succeeded"}, None),
        ({"phase": "Building", "build": {"requestKey": "k", "requestedAt": "2026-11-27T12:05:00Z"}}, 5),
        ({"phase": "Submitting", "build": {"completedAt": "2026-11-27T12:20:00Z"}}, 20),
        ({"phase": "Submitting", "submission": {"createdAt": "2026-11-27T12:25:00Z"}}, 25),
        (
            {
                "phase": "Pending",
                "history": [
                    {
                        "attempt": 1,
                        "result": "Failed",
                        "reason": "BuildFailed",
                        "finishedAt": "2026-11-27T12:40:00Z",
                    }
                ],
            },
            40,
        ),
    ],
)
def test_waiting_since_matches_the_phase(status: dict[str, Any], expected: int | None) -> None:
    parsed = PublishingBuildStatus.model_validate(status)
    since = waiting_since(body(spec()), parsed, parsed.phase or Phase.PENDING)
    assert since == (None if expected is None else T0 + timedelta(minutes=expected))


def test_probe_numbers_follow_the_health_state(metrics: Metrics) -> None:
    clock = [0.0]
    health = Health(clock=lambda: clock[0])
    metrics.watch_health(health)
    assert value(metrics, "publishing_ready") == 0
    assert value(metrics, "publishing_watch_events_total") == 0
    health.note_ready()
    health.note_write({"metadata": {"uid": "u1", "resourceVersion": "5"}})
    token = health.note_step_started()
    clock[0] += 12
    health.note_watch_event({"metadata": {"uid": "u2", "resourceVersion": "6"}})
    assert value(metrics, "publishing_ready") == 1
    assert value(metrics, "publishing_watch_events_total") == 1
    assert value(metrics, "publishing_watch_unechoed_writes") == 1
    assert value(metrics, "publishing_watch_echo_lag_seconds") == 12
    assert value(metrics, "publishing_steps_running") == 1
    assert value(metrics, "publishing_step_longest_running_seconds") == 12
    health.note_step_finished(token)
    health.note_watch_event({"metadata": {"uid": "u1", "resourceVersion": "7"}})
    assert value(metrics, "publishing_watch_echo_lag_seconds") == 0
    assert value(metrics, "publishing_step_longest_running_seconds") == 0


def test_a_failing_callback_drops_only_its_own_gauges(metrics: Metrics) -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("boom")

    metrics.watch_phases(broken)
    metrics.build_started("ios")
    text = metrics.exposition().decode()
    assert "publishing_resources{" not in text
    assert 'publishing_builds_started_total{platform="ios"} 1.0' in text


def circuit_state(m: Metrics) -> str:
    """The one state of the StateSet that is 1 (and check that exactly one is)."""
    states = {
        s.labels["publishing_circuit_state"]: s.value
        for f in m.registry.collect()
        if f.name == "publishing_circuit_state"
        for s in f.samples
    }
    assert set(states) == {"closed", "open", "half_open"}
    (current,) = [state for state, flag in states.items() if flag == 1]
    return current


def test_circuit_state_and_openings(metrics: Metrics) -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, open_for=30.0, clock=lambda: now[0])
    metrics.watch_circuit(breaker)
    assert circuit_state(metrics) == "closed"
    breaker.record_failure()
    breaker.record_failure()
    assert circuit_state(metrics) == "open"
    assert value(metrics, "publishing_circuit_open_total") == 1
    now[0] += 30  # half-open comes with time, without an event: read at scrape
    assert circuit_state(metrics) == "half_open"
    breaker.record_failure()  # the probe failed: open again
    assert circuit_state(metrics) == "open"
    assert value(metrics, "publishing_circuit_open_total") == 2
    breaker.record_success()
    assert circuit_state(metrics) == "closed"
    assert value(metrics, "publishing_circuit_open_total") == 2


def test_circuit_state_is_a_stateset(metrics: Metrics) -> None:
    metrics.circuit(CircuitState.OPEN)
    text = metrics.render("application/openmetrics-text; version=1.0.0").body.decode()
    assert "# TYPE publishing_circuit_state stateset" in text
    assert 'publishing_circuit_state{publishing_circuit_state="open"} 1' in text
    assert 'publishing_circuit_state{publishing_circuit_state="closed"} 0' in text
    # The text format has no state sets: one gauge per state, as prometheus-client writes Enums.
    plain = metrics.exposition().decode()
    assert "# TYPE publishing_circuit_state gauge" in plain
    assert 'publishing_circuit_state{publishing_circuit_state="open"} 1.0' in plain


def test_circuit_without_a_breaker_shows_the_last_reported_state(metrics: Metrics) -> None:
    metrics.circuit(CircuitState.OPEN)
    assert circuit_state(metrics) == "open"
    assert value(metrics, "publishing_circuit_open_total") == 1
    metrics.circuit(CircuitState.HALF_OPEN)
    assert circuit_state(metrics) == "half_open"


# -- derived from status writes (driven through the real lifecycle) ---------------------------------


def body(s: PublishingBuildSpec, created: datetime = T0) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "app-1",
            "namespace": "team-a",
            "uid": UID,
            "creationTimestamp": created.isoformat(),
        },
        "spec": s.model_dump(by_alias=True, mode="json", exclude_none=True),
    }


class Driver:
    """Applies lifecycle transitions and reports each status write, like Worker.commit does."""

    def __init__(self, metrics: Metrics, s: PublishingBuildSpec) -> None:
        self.metrics, self.spec, self.body = metrics, s, body(s)
        self.status = PublishingBuildStatus()

    def ctx(self, seconds: float) -> lc.Ctx:
        return lc.Ctx(uid=UID, generation=1, now=T0 + timedelta(seconds=seconds))

    def apply(self, transition: lc.Transition) -> None:
        self.metrics.status_changed(self.body, self.status, transition.status)
        self.status = transition.status

    def build(self, state: str, created: float = 20, **kw: Any) -> lc.BuildObservation:
        return lc.BuildObservation(
            id=kw.pop("id", "b1"), status=state, created_at=T0 + timedelta(seconds=created), **kw
        )

    def to_building(self, at: float = 15) -> None:
        ok = lc.on_credentials(self.status, ok=True, reason=Reason.VALIDATED, message="ok", ctx=self.ctx(at))
        self.apply(ok)
        self.apply(lc.on_slot_granted(self.spec, self.status, self.ctx(at)))


def test_happy_path_counts_start_completion_durations_transitions_and_pickup(metrics: Metrics) -> None:
    d = Driver(metrics, spec())
    d.to_building(at=15)
    d.apply(lc.on_build_started(d.spec, d.status, d.build("IN_QUEUE"), adopted=False, ctx=d.ctx(20)))
    d.apply(lc.on_build_observed(d.spec, d.status, d.build("IN_PROGRESS"), d.ctx(60)))
    finished = d.build("FINISHED", completed_at=T0 + timedelta(seconds=920))
    d.apply(lc.on_build_observed(d.spec, d.status, finished, d.ctx(925)))
    d.apply(lc.on_build_observed(d.spec, d.status, finished, d.ctx(930)))  # seen again: not counted twice
    sub = lc.SubmissionObservation(id="s1", status="IN_QUEUE", created_at=T0 + timedelta(seconds=940))
    d.apply(lc.on_submission_started(d.spec, d.status, sub, adopted=False, ctx=d.ctx(940)))
    done = lc.SubmissionObservation(
        id="s1", status="FINISHED", created_at=sub.created_at, completed_at=T0 + timedelta(seconds=1030)
    )
    d.apply(lc.on_submission_observed(d.spec, d.status, done, d.ctx(1031)))
    assert d.status.phase is Phase.SUCCEEDED

    assert value(metrics, "publishing_builds_started_total", platform="ios") == 1
    assert value(metrics, "publishing_builds_completed_total", platform="ios", result="succeeded") == 1
    assert value(metrics, "publishing_build_duration_seconds_sum", platform="ios", result="succeeded") == 900
    assert value(metrics, "publishing_submissions_completed_total", platform="ios", result="succeeded") == 1
    assert (
        value(metrics, "publishing_submission_duration_seconds_sum", platform="ios", result="succeeded") == 90
    )
    assert value(metrics, "publishing_pickup_latency_seconds_count") == 1
    assert value(metrics, "publishing_pickup_latency_seconds_sum") == 15
    transitions = {
        (s.labels["from_phase"], s.labels["to_phase"]): s.value
        for f in metrics.registry.collect()
        if f.name == "publishing_transitions"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert transitions == {
        ("none", "Queued"): 1,
        ("Queued", "Building"): 1,
        ("Building", "Submitting"): 1,
        ("Submitting", "Succeeded"): 1,
    }
    assert value(metrics, "publishing_retries_total", stage="build", reason="build_failed") == 0


def test_a_retried_build_counts_as_failed_and_as_a_build_retry(metrics: Metrics) -> None:
    d = Driver(metrics, spec(submit=None))
    d.to_building()
    d.apply(lc.on_build_started(d.spec, d.status, d.build("IN_PROGRESS"), adopted=False, ctx=d.ctx(20)))
    errored = d.build("ERRORED", error_code="SERVER_ERROR", completed_at=T0 + timedelta(seconds=320))
    d.apply(lc.on_build_observed(d.spec, d.status, errored, d.ctx(330)))
    assert d.status.phase is Phase.QUEUED and d.status.build is None  # the build left status
    assert value(metrics, "publishing_builds_completed_total", platform="ios", result="failed") == 1
    # Its completion time left status with it: the failed attempt's finish time is used.
    assert value(metrics, "publishing_build_duration_seconds_sum", platform="ios", result="failed") == 310
    assert value(metrics, "publishing_retries_total", stage="build", reason="build_failed") == 1
    # The second attempt is a second build.
    d.apply(lc.on_slot_granted(d.spec, d.status, d.ctx(400)))
    second = d.build("IN_QUEUE", id="b2", created=410)
    d.apply(lc.on_build_started(d.spec, d.status, second, adopted=False, ctx=d.ctx(410)))
    assert value(metrics, "publishing_builds_started_total", platform="ios") == 2
    assert value(metrics, "publishing_pickup_latency_seconds_count") == 1  # only the first start


def test_a_retried_submission_counts_as_failed_and_as_a_submit_retry(metrics: Metrics) -> None:
    d = Driver(metrics, spec())
    d.to_building()
    finished = d.build("FINISHED", completed_at=T0 + timedelta(seconds=100))
    d.apply(lc.on_build_started(d.spec, d.status, finished, adopted=False, ctx=d.ctx(100)))
    sub = lc.SubmissionObservation(id="s1", status="IN_PROGRESS", created_at=T0 + timedelta(seconds=110))
    d.apply(lc.on_submission_started(d.spec, d.status, sub, adopted=False, ctx=d.ctx(110)))
    errored = lc.SubmissionObservation(id="s1", status="ERRORED", created_at=sub.created_at, error_code="X")
    d.apply(lc.on_submission_observed(d.spec, d.status, errored, d.ctx(170)))
    assert d.status.phase is Phase.SUBMITTING
    assert value(metrics, "publishing_submissions_completed_total", platform="ios", result="failed") == 1
    assert value(metrics, "publishing_submission_duration_seconds_sum", platform="ios", result="failed") == 60
    assert value(metrics, "publishing_retries_total", stage="submit", reason="submission_failed") == 1
    assert value(metrics, "publishing_builds_started_total", platform="ios") == 1


def test_a_cancelled_build_counts_as_cancelled(metrics: Metrics) -> None:
    d = Driver(metrics, spec(cancel=True))
    d.to_building()
    d.apply(lc.on_build_started(d.spec, d.status, d.build("IN_PROGRESS"), adopted=False, ctx=d.ctx(20)))
    d.apply(lc.on_build_observed(d.spec, d.status, d.build("CANCELED"), d.ctx(50)))
    assert d.status.phase is Phase.CANCELLED
    assert value(metrics, "publishing_builds_completed_total", platform="ios", result="cancelled") == 1
    # EAS gave no completion time: counted, no duration sample.
    assert value(metrics, "publishing_build_duration_seconds_count", platform="ios", result="cancelled") == 0


def test_finished_resources_count_by_result_and_reason(metrics: Metrics) -> None:
    d = Driver(metrics, spec(submit=None))
    d.to_building()
    finished = d.build("FINISHED", completed_at=T0 + timedelta(seconds=100))
    d.apply(lc.on_build_started(d.spec, d.status, finished, adopted=False, ctx=d.ctx(100)))
    assert d.status.phase is Phase.SUCCEEDED
    d.apply(lc.on_build_observed(d.spec, d.status, finished, d.ctx(110)))  # seen again: once only
    failed = Driver(metrics, spec())
    failed.apply(lc.on_invalid_spec(failed.status, "spec.app: broken", failed.ctx(5)))
    finished_total = "publishing_resources_finished_total"
    assert value(metrics, finished_total, platform="ios", result="succeeded", reason="Succeeded") == 1
    assert value(metrics, finished_total, platform="ios", result="failed", reason="InvalidSpec") == 1
    # Every platform x final reason exists from the start, so ratios see zeros.
    assert (
        metrics.registry.get_sample_value(
            finished_total, {"platform": "android", "result": "failed", "reason": "Timeout"}
        )
        == 0
    )
    assert (
        metrics.registry.get_sample_value(
            finished_total, {"platform": "android", "result": "cancelled", "reason": "Cancelled"}
        )
        == 0
    )


def test_no_change_records_nothing_and_odd_bodies_never_raise(metrics: Metrics) -> None:
    before = metrics.exposition()
    metrics.status_changed({}, PublishingBuildStatus(), PublishingBuildStatus())
    metrics.status_changed(
        {"spec": "garbage", "metadata": {"creationTimestamp": "yesterday"}},
        PublishingBuildStatus(),
        PublishingBuildStatus(),
    )
    assert _ours(metrics.exposition()) == _ours(before)


def _ours(text: bytes) -> list[str]:
    # The operator's own series (process_* and python_* numbers move on their own).
    return [line for line in text.decode().splitlines() if line.startswith("publishing_")]


def test_no_created_series_in_either_format(metrics: Metrics) -> None:
    metrics.build_completed("ios", "succeeded", 100.0)
    metrics.retry("api", "expo_error")
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        text = metrics.render(accept).body.decode()
        assert "_created" not in text, accept


def test_process_and_python_collectors_are_on_the_registry(metrics: Metrics) -> None:
    names = {s.name for f in metrics.registry.collect() for s in f.samples}
    assert {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "python_info",
        "python_gc_collections_total",
    } <= names


# -- the /metrics endpoint --------------------------------------------------------------------------


async def test_metrics_endpoint_serves_the_exposition_format(metrics: Metrics) -> None:
    metrics.build_started("android")
    server = await start_metrics_server(metrics, host="127.0.0.1", port=0)
    try:
        assert server.port > 0
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
            missing = await client.get(f"http://127.0.0.1:{server.port}/nothing")
    finally:
        await server.stop()
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_PLAIN_0_0_4
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    started = families["publishing_builds_started"]
    assert {s.labels["platform"]: s.value for s in started.samples if s.name.endswith("_total")} == {
        "android": 1.0,
        "ios": 0.0,
    }
    assert "publishing_operator_info" in families
    assert missing.status_code == 404


# What Prometheus 2.x sends (scrape.go's acceptHeader) and what a plain client sends.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (PROMETHEUS_ACCEPT, "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        ("text/plain", CONTENT_TYPE_PLAIN_0_0_4),
        ("*/*", CONTENT_TYPE_PLAIN_0_0_4),
    ],
)
async def test_metrics_endpoint_negotiates_the_format_and_gzip(
    metrics: Metrics, accept: str, content_type: str
) -> None:
    metrics.build_started("ios")
    server = await start_metrics_server(metrics, host="127.0.0.1", port=0)
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            url = server.url("/metrics")
            zipped = await client.get(url, headers={"Accept": accept, "Accept-Encoding": "gzip"})
            plain = await client.get(url, headers={"Accept": accept, "Accept-Encoding": "identity"})
    finally:
        await server.stop()
    assert zipped.headers["content-type"].startswith(content_type.split(";")[0])
    assert zipped.headers["content-type"].replace(" ", "").startswith(content_type.replace(" ", ""))
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert zipped.num_bytes_downloaded < len(plain.content) / 3  # gzip on the wire; httpx un-gzips
    ours = [[line for line in r.text.splitlines() if "publishing_" in line] for r in (zipped, plain)]
    assert ours[0] == ours[1]  # the same exposition (process_* numbers move between scrapes)
    if content_type.startswith("application/openmetrics-text"):
        assert plain.text.endswith("# EOF\n")
        assert 'publishing_builds_started_total{platform="ios"} 1.0' in plain.text
    else:
        assert "# EOF" not in plain.text


async def test_serve_metrics_with_port_0_is_off(metrics: Metrics) -> None:
    async with serve_metrics(metrics, 0) as server:
        assert server is None


async def test_serve_metrics_stops_serving_when_the_block_ends(metrics: Metrics) -> None:
    probe = await start_metrics_server(metrics, host="127.0.0.1", port=0)
    port = probe.port  # a port that was free a moment ago
    await probe.stop()
    async with serve_metrics(metrics, port, host="127.0.0.1") as server:
        assert server is not None and server.port == port
        async with httpx.AsyncClient(timeout=10.0) as client:
            assert (await client.get(server.url("/metrics"))).status_code == 200
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=10.0) as client:
            await client.get(f"http://127.0.0.1:{port}/metrics")


def test_the_readme_metric_table_lists_exactly_what_is_exported() -> None:
    metrics = Metrics()
    metrics.watch_limiter(StartLimiter(1, 60.0).snapshot)
    metrics.watch_circuit(CircuitBreaker())
    metrics.watch_health(Health())
    exported = set()
    for family in metrics.registry.collect():
        if family.name.startswith("publishing_"):
            suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
            exported.add(family.name + suffix)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^\| `(publishing_\w+)` \|", readme, re.MULTILINE))
    assert documented == exported


def test_last_expo_request_and_last_grant_times_start_at_creation() -> None:
    now = [1_800_000_000.0]
    metrics = Metrics(clock=lambda: now[0])
    limiter = StartLimiter(1, 60.0, clock=lambda: now[0])
    metrics.watch_limiter(limiter.snapshot)
    # Before any request or grant: the start, so "how long since" never counts from 1970.
    assert value(metrics, "publishing_expo_last_request_timestamp_seconds") == now[0]
    assert value(metrics, "publishing_limiter_last_grant_timestamp_seconds") == now[0]
    now[0] += 30
    metrics.expo_request(outcome())
    limiter.try_acquire("a.1")
    now[0] += 30
    limiter.try_acquire("a.1")  # re-acquired: no new grant
    limiter.try_acquire("b.1")  # denied
    assert value(metrics, "publishing_expo_last_request_timestamp_seconds") == 1_800_000_030.0
    assert value(metrics, "publishing_limiter_last_grant_timestamp_seconds") == 1_800_000_030.0
