"""Generate `publishing-operator.json`, the operator's Grafana dashboard, with grafana-foundation-sdk.

    python deploy/grafana/generate.py            # write deploy/grafana/publishing-operator.json
    python deploy/grafana/generate.py --check    # exit 1 if the committed file differs
    python deploy/grafana/generate.py --panels   # the panels and the query each runs (Markdown)

The JSON is committed (users import it; the Helm chart ships it in a ConfigMap) and a unit test
keeps it equal to this script's output. It works provisioned as well as imported: the data source
is the `datasource` variable (no `__inputs`, which only the import wizard resolves), and every
query selects the operator's namespace through the `namespace` variable (the namespace label
Prometheus gives the operator's target).

Rows: throughput, PublishingBuilds by phase, the start limiter, build and submission durations,
the Expo API, retries and the circuit breaker, the operator process and its probes.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders import stat, statetimeline, timeseries
from grafana_foundation_sdk.builders.common import StackingConfig
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import StackingMode, VisibilityMode

OUTPUT = Path(__file__).with_name("publishing-operator.json")
UID = "publishing-operator"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
NS = 'namespace="$namespace"'
UNFINISHED = 'phase=~"Pending|Queued|Building|Submitting"'
FINISHED = 'phase=~"Succeeded|Failed|Cancelled"'
# process_* and python_* come from every Python exporter: keep the operator's own targets only.
OPERATOR = f"and on (namespace, job, instance) publishing_operator_info{{{NS}}}"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    kind: str  # timeseries | stat | state
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    width: int = 8
    stacked: bool = False
    mappings: tuple[tuple[int, str, str], ...] = ()  # value, text, colour (state panels)


@dataclass(frozen=True)
class Section:
    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def q(expr: str, legend: str = "__auto") -> Query:
    return Query(" ".join(expr.split()), legend)


def rate(metric: str, by: str = "", where: str = NS, per: str = "") -> str:
    """The rate of a counter over Grafana's rate interval, summed by `by`; `per` 60 is per minute."""
    group = f" by ({by}) " if by else ""
    scale = f" * {per}" if per else ""
    return f"sum{group}(rate({metric}{{{where}}}[$__rate_interval])){scale}"


def quantiles(metric: str, by: str, window: str, where: str = NS) -> tuple[Query, ...]:
    """p50 and p95 of a histogram, per `by` label (or overall when empty)."""
    group = f"{by}, le" if by else "le"
    label = f" {{{{{by}}}}}" if by else ""
    return tuple(
        q(
            f"histogram_quantile({p}, sum by ({group}) (rate({metric}_bucket{{{where}}}[{window}])))",
            f"p{int(p * 100)}{label}",
        )
        for p in (0.5, 0.95)
    )


SECTIONS: tuple[Section, ...] = (
    Section(
        "Throughput",
        (
            Panel(
                "timeseries",
                "EAS builds started per minute",
                "Builds created on EAS (or adopted after a restart), by platform.",
                (q(rate("publishing_builds_started_total", "platform", per="60"), "{{platform}}"),),
            ),
            Panel(
                "timeseries",
                "EAS builds finished per minute",
                "EAS builds that reached a terminal state, by result (a retried attempt counts as failed).",
                (q(rate("publishing_builds_completed_total", "result", per="60"), "{{result}}"),),
            ),
            Panel(
                "timeseries",
                "PublishingBuilds finished per minute",
                "Resources that reached Succeeded, Failed or Cancelled, by the Succeeded condition's reason.",
                (
                    q(
                        rate("publishing_resources_finished_total", "result, reason", per="60"),
                        "{{result}}: {{reason}}",
                    ),
                ),
            ),
            Panel(
                "stat",
                "Failure ratio, last hour",
                "Failed PublishingBuilds among those finished in the last hour"
                " (alert: PublishingBuildFailureRatio).",
                (
                    q(
                        f"""sum(increase(publishing_resources_finished_total{{{NS}, result="failed"}}[1h]))
                        / clamp_min(sum(increase(publishing_resources_finished_total{{{NS}}}[1h])), 1)""",
                        "failed",
                    ),
                ),
                unit="percentunit",
                width=6,
            ),
            Panel(
                "timeseries",
                "Phase transitions per minute",
                "Status writes that moved a resource to another phase, by the phase it moved to.",
                (q(rate("publishing_transitions_total", "to_phase", per="60"), "{{to_phase}}"),),
                width=18,
            ),
        ),
    ),
    Section(
        "Builds in flight",
        (
            Panel(
                "timeseries",
                "Unfinished PublishingBuilds by phase",
                "Counted from the resources themselves (right after a restart too).",
                (q(f"sum by (phase) (publishing_resources{{{NS}, {UNFINISHED}}})", "{{phase}}"),),
                stacked=True,
            ),
            Panel(
                "timeseries",
                "Oldest resource per phase",
                "Building: since its EAS build was created; Submitting: since its submission was; Queued:"
                " since it could start; Pending: since creation or its last attempt (alerts:"
                " PublishingBuildStuck, PublishingBuildQueuedTooLong).",
                (q(f"max by (phase) (publishing_oldest_in_phase_seconds{{{NS}}})", "{{phase}}"),),
                unit="s",
            ),
            Panel(
                "stat",
                "Builds holding an in-flight slot",
                "EAS builds between their start and their end (MAX_IN_FLIGHT caps them when set).",
                (q(f"sum(publishing_builds_in_flight{{{NS}}})", "in flight"),),
                width=4,
            ),
            Panel(
                "stat",
                "Finished PublishingBuilds kept",
                "Finished resources still in the cluster (HISTORY_SUCCEEDED, HISTORY_FAILED and TTLs"
                " prune them).",
                (q(f"sum by (phase) (publishing_resources{{{NS}, {FINISHED}}})", "{{phase}}"),),
                width=4,
            ),
            Panel(
                "timeseries",
                "Pickup latency, created to first EAS call",
                "From a resource's creation to its first build start: credentials, the start limiter and the"
                " circuit breaker together. One-hour window.",
                quantiles("publishing_pickup_latency_seconds", "", "1h"),
                unit="s",
                width=24,
            ),
        ),
    ),
    Section(
        "Start limiter",
        (
            Panel(
                "timeseries",
                "Waiting for a start slot",
                "Resources the limiter keeps waiting (FIFO), and the starts it would grant right now.",
                (
                    q(f"sum(publishing_limiter_waiting{{{NS}}})", "waiting"),
                    q(f"sum(publishing_limiter_free_slots{{{NS}}})", "free slots"),
                ),
            ),
            Panel(
                "timeseries",
                "Starts granted per minute",
                "Build starts the limiter granted (START_RATE bounds them).",
                (q(rate("publishing_limiter_wait_seconds_count", per="60"), "granted"),),
            ),
            Panel(
                "timeseries",
                "How long waiters wait",
                "From a resource's first request for a start slot to its grant, and the longest waiting now"
                " (alert: PublishingLimiterStarving).",
                (
                    *quantiles("publishing_limiter_wait_seconds", "", "$__rate_interval"),
                    q(f"max(publishing_limiter_oldest_wait_seconds{{{NS}}})", "longest waiting now"),
                ),
                unit="s",
            ),
        ),
    ),
    Section(
        "Durations",
        (
            Panel(
                "timeseries",
                "Build duration (succeeded)",
                "EAS build created to completed, queue included; one-hour window.",
                quantiles("publishing_build_duration_seconds", "platform", "1h", f'{NS}, result="succeeded"'),
                unit="s",
                width=12,
            ),
            Panel(
                "timeseries",
                "Submission duration (succeeded)",
                "EAS submission created to completed; one-hour window.",
                quantiles(
                    "publishing_submission_duration_seconds", "platform", "1h", f'{NS}, result="succeeded"'
                ),
                unit="s",
                width=12,
            ),
        ),
    ),
    Section(
        "Expo API",
        (
            Panel(
                "timeseries",
                "Requests per second by operation",
                "HTTP requests to Expo's GraphQL API (and archive uploads).",
                (q(rate("publishing_expo_requests_total", "operation"), "{{operation}}"),),
                unit="reqps",
            ),
            Panel(
                "timeseries",
                "Errors per second by outcome",
                "transient: network, timeouts, 5xx, 429; auth: a token Expo refused; user: a request Expo"
                " rejected; unknown: anything else.",
                (
                    q(
                        rate("publishing_expo_requests_total", "outcome", f'{NS}, outcome!="ok"'),
                        "{{outcome}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "timeseries",
                "Error ratio",
                "Failed requests among all requests (alert: PublishingExpoApiErrors, on transient and"
                " unknown errors).",
                (
                    q(
                        rate("publishing_expo_requests_total", where=f'{NS}, outcome!="ok"')
                        + " / "
                        + rate("publishing_expo_requests_total"),
                        "error ratio",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "timeseries",
                "Request latency p95 by operation",
                "One HTTP request to Expo, retries counted separately.",
                (
                    q(
                        "histogram_quantile(0.95, sum by (operation, le) (rate("
                        f"publishing_expo_request_duration_seconds_bucket{{{NS}}}[$__rate_interval])))",
                        "{{operation}}",
                    ),
                ),
                unit="s",
                width=18,
            ),
            Panel(
                "stat",
                "Since the last Expo request",
                "Seconds since a request to Expo last ended: polls keep it low while builds are in flight"
                " (alert: PublishingOperatorNotReconciling).",
                (q(f"time() - max(publishing_expo_last_request_timestamp_seconds{{{NS}}})", "seconds"),),
                unit="s",
                width=6,
            ),
        ),
    ),
    Section(
        "Retries and circuit breaker",
        (
            Panel(
                "timeseries",
                "Retries per minute",
                "build / submit: a new attempt after a retryable failure; api: a request or step re-done"
                " after an API error (no attempt used).",
                (q(rate("publishing_retries_total", "stage, reason", per="60"), "{{stage}}: {{reason}}"),),
                width=12,
            ),
            Panel(
                "state",
                "Expo circuit breaker",
                "Open: Expo kept failing, no new build starts; half-open: the next call probes (alert:"
                " PublishingExpoCircuitOpen).",
                (
                    q(
                        f"""max(publishing_circuit_state{{{NS}, publishing_circuit_state="half_open"}})
                        + 2 * max(publishing_circuit_state{{{NS}, publishing_circuit_state="open"}})""",
                        "circuit",
                    ),
                ),
                width=8,
                mappings=((0, "closed", "green"), (1, "half-open", "orange"), (2, "open", "red")),
            ),
            Panel(
                "stat",
                "Circuit openings",
                "Times the circuit opened in the selected time range.",
                (q(f"sum(increase(publishing_circuit_open_total{{{NS}}}[$__range]))", "openings"),),
                width=4,
            ),
        ),
    ),
    Section(
        "Operator",
        (
            Panel(
                "timeseries",
                "CPU",
                "CPU seconds per second of the operator process.",
                (q(f"rate(process_cpu_seconds_total{{{NS}}}[$__rate_interval]) {OPERATOR}", "{{pod}}"),),
                unit="percentunit",
            ),
            Panel(
                "timeseries",
                "Memory",
                "Resident memory of the operator process.",
                (q(f"process_resident_memory_bytes{{{NS}}} {OPERATOR}", "{{pod}}"),),
                unit="bytes",
            ),
            Panel(
                "stat",
                "Restarts",
                "Operator process restarts in the selected time range (a new process start time in the same"
                " pod; alert: PublishingOperatorDown).",
                (q(f"sum(changes(process_start_time_seconds{{{NS}}}[$__range]) {OPERATOR})", "restarts"),),
                width=4,
            ),
            Panel(
                "stat",
                "Ready",
                "1 once startup finished, until shutdown (the readiness probe).",
                (q(f"max(publishing_ready{{{NS}}})", "ready"),),
                width=4,
            ),
            Panel(
                "timeseries",
                "Watch stream and workers",
                "Echo lag: age of the oldest write of the operator not yet seen back on the watch stream;"
                " longest step: the longest running reconcile step. Liveness fails past 5 and 15 minutes"
                " (alert: PublishingOperatorNotReconciling).",
                (
                    q(f"max(publishing_watch_echo_lag_seconds{{{NS}}})", "watch echo lag"),
                    q(f"max(publishing_step_longest_running_seconds{{{NS}}})", "longest step"),
                ),
                unit="s",
                width=12,
            ),
            Panel(
                "timeseries",
                "Watch events and steps",
                "PublishingBuild watch events received per second, and reconcile steps running.",
                (
                    q(rate("publishing_watch_events_total"), "watch events/s"),
                    q(f"sum(publishing_steps_running{{{NS}}})", "steps running"),
                ),
                width=12,
            ),
        ),
    ),
)


def targets(panel: Panel) -> list[Dataquery]:
    ids = "ABCDEFGHIJ"
    return [
        Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ids[i]).datasource(DATASOURCE)
        for i, query in enumerate(panel.queries)
    ]


def build_panel(panel: Panel) -> timeseries.Panel | stat.Panel | statetimeline.Panel:
    built: timeseries.Panel | stat.Panel | statetimeline.Panel
    if panel.kind == "timeseries":
        built = timeseries.Panel().fill_opacity(10).show_points(VisibilityMode.NEVER)
        if panel.stacked:
            built = built.stacking(StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(40)
    elif panel.kind == "stat":
        built = stat.Panel()
    else:
        built = statetimeline.Panel().show_value(VisibilityMode.NEVER).mappings(value_mappings(panel))
    return (
        built.title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .span(panel.width)
        .height(8)
        .targets(targets(panel))  # type: ignore[arg-type]  # Dataquery builds a Dataquery variant
    )


def value_mappings(panel: Panel) -> list[model.ValueMapping]:
    return [
        model.ValueMap(options={str(value): model.ValueMappingResult(text=text, color=colour, index=i)})
        for i, (value, text, colour) in enumerate(panel.mappings)
    ]


def build() -> Dashboard:
    board = (
        Dashboard("Publishing operator")
        .uid(UID)
        .description(
            "PublishingBuild throughput, phases, the start limiter, Expo's API and the operator itself."
        )
        .tags(["publishing-operator", "kubernetes", "expo"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query("label_values(publishing_operator_info, namespace)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
        )
    )
    ids = itertools.count(1)  # Grafana wants a unique id per panel, rows included
    for section in SECTIONS:
        board = board.with_row(Row(section.title).id(next(ids)))
        for panel in section.panels:
            board = board.with_panel(build_panel(panel).id(next(ids)))
    return board


def render() -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"


def panel_table() -> str:
    lines = ["| row | panel | query |", "|---|---|---|"]
    for section in SECTIONS:
        for panel in section.panels:
            for query in panel.queries:
                lines.append(f"| {section.title} | {panel.title} | `{query.expr}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the committed JSON differs")
    mode.add_argument("--panels", action="store_true", help="print the panels and their queries")
    args = parser.parse_args(argv)
    if args.panels:
        sys.stdout.write(panel_table())
        return 0
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
