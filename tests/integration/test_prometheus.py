"""Issue 13: a real Prometheus scrapes the real operator through successes, failures, a retry, an
open circuit and a restart; then every dashboard query and every alert expression is evaluated
through Prometheus' HTTP API, every metric they name is one the operator exports, and promtool finds
nothing to say about a live scrape.

The operator runs as in production against the emulated Kubernetes API and the Expo simulator
(the `stack` fixture); Prometheus is Debian's package (`apt-get install prometheus`), scraping every
second with the shipped alert rules loaded.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.observability import alert_rules, metric_names, panel_queries, prometheus_tool, selectors
from tests.fixtures.operator import OperatorProcess, Stack, phase, publishing_build
from tests.fixtures.prometheus import JOB, NAMESPACE, Prometheus, free_port

pytestmark = pytest.mark.integration

# What the scenario below makes each alert's expression do while it runs.
MATCH_DURING_THE_RUN = {
    "PublishingOperatorDown",  # the operator is stopped for a restart
    "PublishingBuildFailureRatio",  # half of the first six PublishingBuilds fail
    "PublishingExpoApiErrors",  # 24 answers of 503
    "PublishingExpoCircuitOpen",  # ... which open the circuit
}
SILENT_DURING_THE_RUN = {
    "PublishingOperatorNotReconciling",  # it reconciles: writes echo, steps end, Expo is polled
    "PublishingBuildStuck",  # builds take seconds, far under the one-hour floor
    "PublishingBuildQueuedTooLong",  # waits take seconds, far under the 30-minute floor
    "PublishingLimiterStarving",  # every waiter gets a slot within seconds
}
# Not exported by the operator: Prometheus makes `up` for every target.
PROMETHEUS_OWN = {"up"}
RATE_INTERVAL = "5s"  # what Grafana's $__rate_interval is with a 1 s scrape interval


def build_id(obj: dict[str, Any] | None) -> str | None:
    return (((obj or {}).get("status") or {}).get("build") or {}).get("id")


def reason(obj: dict[str, Any] | None) -> str | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Succeeded":
            return str(cond.get("reason"))
    return None


# Every metric name seen in this module's scrapes of the operator (before and after its restart:
# a counter whose labels come from events only appears once such an event happened in the process).
EXPORTED: set[str] = set()


async def scrape(port: int, accept: str = "text/plain; version=0.0.4") -> str:
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept": accept})
    response.raise_for_status()
    if accept.startswith("text/plain"):
        EXPORTED.update(name for name, _ in samples(response.text))
    return response.text


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def sample(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def grafana(expr: str, run_seconds: float) -> str:
    """A dashboard query as Grafana sends it for this run's time range."""
    return (
        expr.replace("$namespace", NAMESPACE)
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__range", f"{int(run_seconds) + 5}s")
    )


async def test_a_real_prometheus_scrapes_the_operator_and_every_query_and_alert_works(
    stack: Stack, prometheus_factory: Any
) -> None:
    metrics_port, health_port = free_port(), free_port()
    prometheus: Prometheus = prometheus_factory([f"127.0.0.1:{metrics_port}"])
    started = time.time()
    settings = {
        "metrics_port": str(metrics_port),
        "health_port": str(health_port),
        "start_rate": "2/4s",  # six resources at once: four of them wait for a start slot
        "circuit_threshold": "3",
        "circuit_open_for": "5s",
    }

    # Counters exist from the start at zero; Prometheus must see those zeros before anything happens,
    # or increase() would miss what happened before its first scrape (a slow first scrape on a loaded
    # machine). Likewise one early transient error makes the series the Expo outage below counts.
    operator = stack.operator(**settings)
    await prometheus.until(
        lambda: prometheus.has_data("publishing_resources_finished_total"), what="a first scrape"
    )
    stack.fault(calls=[{"operation": "byId", "count": 1, "http_status": 503}])

    # -- successes, failures and a retry ---------------------------------------------------------------
    stack.apply_example_secrets()
    stack.fault(
        outcomes=[
            # Every Android build fails with a compile error (a user error: failed at once) ...
            {
                "target": "build",
                "platform": "ANDROID",
                "count": 3,
                "error_code": "EAS_BUILD_UNKNOWN_GRADLE_ERROR",
            },
            # ... and one iOS build with an infrastructure error: retried, then it succeeds.
            {"target": "build", "platform": "IOS", "count": 1, "error_code": "UNKNOWN_ERROR"},
        ]
    )
    retry = {"maxAttempts": 3, "backoff": {"initial": "1s"}}
    ios = [f"ios-{i}" for i in range(3)]
    android = [f"android-{i}" for i in range(3)]
    stack.apply(
        *(publishing_build(name, retry=retry) for name in ios),
        *(publishing_build(name, platform="android", submit=False) for name in android),
        # Never starts: its token Secret does not exist (Pending, through the restart too).
        publishing_build("no-token", expo={"tokenSecretRef": {"name": "missing-secret"}}),
    )
    for name in ios + android:
        await stack.wait_phase(name, "Succeeded", "Failed", timeout=120)
    results = {name: phase(await stack.get(name)) for name in ios + android}
    assert results == {**dict.fromkeys(ios, "Succeeded"), **dict.fromkeys(android, "Failed")}
    assert len(stack.builds()) == 7, "one iOS build was retried"

    # -- Expo fails: the circuit opens --------------------------------------------------------------------
    stack.expo.state.configure({"build_seconds": 1200.0})  # ~6 s: in flight while Expo fails
    stack.apply(*(publishing_build(f"long-{i}", submit=False) for i in range(2)))
    for i in range(2):
        await stack.wait(f"long-{i}", lambda o: build_id(o) is not None)
    await prometheus.until(
        lambda: prometheus.has_data('publishing_expo_requests_total{outcome="transient"}'),
        what="the early transient error in Prometheus",
    )
    # Polls fail, creates do not: a create whose answer is lost ends Unconfirmed (exactly-once start).
    stack.fault(calls=[{"operation": "byId", "count": 24, "http_status": 503}])

    async def circuit_open() -> bool:
        text = await scrape(metrics_port)
        return sample(text, "publishing_circuit_state", publishing_circuit_state="open") == 1.0

    await prometheus.until(circuit_open, timeout=60, what="the operator's circuit to open")
    stack.apply(publishing_build("newcomer", submit=False))
    await stack.wait("newcomer", lambda o: reason(o) == "ExpoUnavailable", timeout=60)
    for name in ("long-0", "long-1", "newcomer"):
        done = await stack.wait_phase(name, "Succeeded", "Failed", timeout=120)
        assert phase(done) == "Succeeded", (name, done["status"])
    await prometheus.until(
        lambda: prometheus.has_data(
            'max_over_time(publishing_circuit_state{publishing_circuit_state="open"}[5m]) == 1'
        ),
        what="a scrape with the circuit open",
    )

    # -- the probes ---------------------------------------------------------------------------------------
    async with httpx.AsyncClient(timeout=10.0) as client:
        alive = await client.get(f"http://127.0.0.1:{health_port}/healthz")
        ready = await client.get(f"http://127.0.0.1:{health_port}/readyz")
    assert (alive.status_code, alive.json()["ok"]) == (200, True)
    assert (ready.status_code, ready.json()["ok"]) == (200, True)

    # -- a restart: builds by phase come from the resources ---------------------------------------------
    operator.signal(signal.SIGTERM)
    assert operator.wait(timeout=60) == 0
    await prometheus.until(
        lambda: prometheus.has_data(f'up{{job="{JOB}"}} == 0'), what="a failed scrape of the stopped operator"
    )
    restarted: OperatorProcess = stack.operator(**settings)
    expected = await phases_in_the_cluster(stack)

    async def counted_again() -> bool:
        try:
            text = await scrape(metrics_port)
        except httpx.HTTPError:
            return False
        counted = {
            labels[0][1]: value
            for (name, labels), value in samples(text).items()
            if name == "publishing_resources" and value
        }
        return counted == expected

    await prometheus.until(counted_again, timeout=90, what=f"publishing_resources to equal {expected}")
    await prometheus.until(
        lambda: prometheus.has_data(f'changes(process_start_time_seconds{{job="{JOB}"}}[10m]) >= 1'),
        what="Prometheus to scrape the restarted operator",
    )
    assert restarted.alive
    end = time.time()
    run = end - started

    # -- every dashboard query returns data ------------------------------------------------------------
    empty = []
    for query in panel_queries():
        series = await prometheus.query_range(grafana(query.expr, run), started, end)
        if not any(s.finite for s in series):
            empty.append(f"{query.panel}: {query.expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

    restarts = await prometheus.query(
        grafana(next(q.expr for q in panel_queries() if q.panel == "Restarts"), run), at=end
    )
    assert restarts and restarts[0].values[0] >= 1

    # -- every alert expression parses, and matches exactly when the scenario says it must ----------------
    names = {rule.name for rule in alert_rules()}
    assert names == MATCH_DURING_THE_RUN | SILENT_DURING_THE_RUN
    for rule in alert_rules():
        series = await prometheus.query_range(rule.expr, started, end)
        matched = any(s.finite for s in series)
        if matched != (rule.name in MATCH_DURING_THE_RUN):
            raise AssertionError(
                f"{rule.name}: matched {matched}\n" + await explain(prometheus, rule.expr, started, end)
            )

    # ... and Prometheus evaluates every loaded rule without an error.
    groups = (await prometheus.api("rules"))["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == names
    assert all(rule["health"] == "ok" for rule in loaded.values()), loaded

    # -- every selector selects series, every metric name is exported --------------------------------------
    live = await scrape(metrics_port)
    exported = set(EXPORTED)
    exprs = [grafana(q.expr, run) for q in panel_queries()] + [rule.expr for rule in alert_rules()]
    for expr in exprs:
        assert metric_names(expr) <= exported | PROMETHEUS_OWN, (expr, metric_names(expr) - exported)
        for selector in selectors(expr):
            found = await prometheus.query(f"count_over_time({selector}[{int(run) + 5}s])", at=end)
            assert found, f"{selector} selects nothing (in {expr})"

    # -- promtool has nothing to say about a live scrape -------------------------------------------------
    promtool = await asyncio.create_subprocess_exec(
        prometheus_tool("promtool"),
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(promtool.communicate(live.encode()), timeout=60)
    assert (promtool.returncode, out.decode(), err.decode()) == (0, "", "")

    # Prometheus scraped OpenMetrics (it asks for it first) without a complaint.
    targets = (await prometheus.api("targets"))["activeTargets"]
    assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")]
    assert (await scrape(metrics_port, "application/openmetrics-text; version=1.0.0")).endswith("# EOF\n")

    # No resource name or uid became a label.
    for name in [*ios, *android, "long-0", "newcomer", "no-token"]:
        assert f'"{name}"' not in live


async def explain(prometheus: Prometheus, expr: str, start: float, end: float) -> str:
    """What each selector of `expr` saw during the run (every fifth second), for a failure message."""
    lines = []
    for selector in sorted(set(selectors(expr))):
        for series in await prometheus.query_range(selector, start, end):
            lines.append(f"{selector} {series.labels}: {series.values[::5]}")
    return "\n".join(lines)


async def phases_in_the_cluster(stack: Stack) -> dict[str, float]:
    items = await stack.kube.wait_for_list(lambda items: True, "publishingbuilds")
    counts: dict[str, float] = {}
    for item in items:
        name = (item.get("status") or {}).get("phase") or "Pending"
        counts[name] = counts.get(name, 0) + 1
    return counts


async def test_the_probes_and_phase_ages_are_fed_by_the_controller(stack: Stack) -> None:
    """Watch events reach health.Health, and resources reach the phase tally with their ages."""
    metrics_port = free_port()
    stack.apply_example_secrets()
    stack.apply(
        publishing_build("fed", platform="android", submit=False),
        publishing_build("waiting", expo={"tokenSecretRef": {"name": "missing-secret"}}),
    )
    stack.operator(metrics_port=str(metrics_port))
    await stack.wait_phase("fed", "Succeeded", timeout=90)
    await stack.wait_phase("waiting", "Pending", timeout=30)
    text = await scrape(metrics_port)
    assert (sample(text, "publishing_watch_events_total") or 0) > 0
    assert (sample(text, "publishing_oldest_in_phase_seconds", phase="Pending") or 0) > 0
