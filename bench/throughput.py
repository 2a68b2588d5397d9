"""Throughput: N PublishingBuilds created at once, until the operator is done with all of them.

Every resource is the same fixed spec (default ios-testflight: GitHub source, iOS build, TestFlight
submission) on the example Secrets. Timeline and poll intervals are scaled as in bench.one_build
(`--time-scale`, default 0.005: one build ~3.5 s). Two runs:
  unthrottled      START_RATE 1000/60s: the limiter never denies; pure operator + API load.
  default-limiter  the default START_RATE 5/60s with its window scaled like everything else
                   (5 per 300 ms at 0.005): builds start in waves, waiters stay Queued.

Time is compressed ~200x, so 50 builds at once load the operator like ~10 000 concurrent real
builds would: it is CPU-bound, its steps queue, and it polls each build less often than
POLL_BUILD asks (fewer BuildById per build than bench.one_build). "CPU ms/build" is the figure that
carries over to real time.

What each number counts:
  all Succeeded  from the first create committed to the last status write setting Succeeded;
                 "settled" = to the last write for any of them (labels, finalizers, Events).
  pickup         per resource, create committed -> the operator's first write to it (p50/p95).
  EAS start      per resource, create committed -> its EAS build's createdAt in the simulator.
  peak RSS       the operator process's VmHWM (/proc/<pid>/status) at the end; CPU = its user +
                 system seconds over its whole life (start-up included).
  Expo calls/build    every GraphQL call after the creates, divided by N (by operation with --detail).
  K8s writes/build    mean over resources of the MODIFIED events of the PublishingBuild plus its
                      core/v1 Events (see bench.one_build); "Queued" = status writes that left it
                      Queued (limiter denials, their position updates).
  K8s requests/build  every request the operator sent after the creates (reads too), divided by N.

The CRDs are applied without their CEL rules unless --cel (see bench.stack.bench_stack).

Run: python -m bench.throughput [--count 50] [--time-scale 0.005] [--run NAME] [--cel] [--detail]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from tests.fixtures.operator import publishing_build

from bench.one_build import VARIANTS
from bench.stack import DEFAULT_TIME_SCALE, ResourceWrites, bench_stack, cpu_seconds, proc_status_kib
from publishing_operator.durations import format_duration

RUNS = ("unthrottled", "default-limiter")


@dataclass
class Throughput:
    run: str
    count: int
    start_rate: str
    create_spread: float  # first to last create committed
    all_succeeded: float
    all_settled: float
    pickup: list[float]
    eas_start: list[float]
    peak_rss_kib: int | None
    ready_rss_kib: int | None  # VmRSS once the operator watches, before the creates
    operator_cpu: float | None
    ready_cpu: float | None  # CPU seconds spent by then (imports, start-up, first LIST)
    harness_cpu: float  # this process: emulator + simulator threads + the benchmark itself
    expo_calls: Counter[str]
    kube_writes: list[int]  # per resource: object writes + Events
    status_writes: list[int]
    metadata_writes: list[int]
    events: list[int]
    queued_writes: list[int]
    kube_requests: Counter[str]
    event_reasons: Counter[str]
    busiest: ResourceWrites  # the resource with the most writes, for its timeline
    failed: int
    log_problems: Counter[str]

    @property
    def expo_per_build(self) -> float:
        return sum(self.expo_calls.values()) / self.count

    @property
    def requests_per_build(self) -> float:
        return sum(self.kube_requests.values()) / self.count

    @property
    def cpu_per_build_ms(self) -> float | None:
        """Operator CPU after start-up, per build (what a real-time build costs the operator)."""
        if self.operator_cpu is None or self.ready_cpu is None:
            return None
        return (self.operator_cpu - self.ready_cpu) / self.count * 1000


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def start_rate_for(run: str, count: int, time_scale: float) -> str:
    if run == "unthrottled":
        return f"{max(1000, count)}/60s"
    return f"5/{format_duration(timedelta(seconds=60) * time_scale)}"


def run_throughput(
    run: str,
    *,
    count: int = 50,
    variant: str = "ios-testflight",
    time_scale: float = DEFAULT_TIME_SCALE,
    cel: bool = False,
) -> Throughput:
    names = [f"bench-{i:03d}" for i in range(count)]
    rate = start_rate_for(run, count, time_scale)
    harness_before = time.process_time()
    with bench_stack(time_scale=time_scale, cel=cel) as bench:
        process = bench.start_operator(start_rate=rate)
        assert process.process is not None
        pid = process.process.pid
        ready_rss, ready_cpu = proc_status_kib(pid, "VmRSS"), cpu_seconds(pid)
        expo_before = bench.expo_call_count()
        requests_before = len(bench.operator_requests())
        bench.create([publishing_build(name, **VARIANTS[variant]) for name in names])
        found = bench.wait_settled(set(names), timeout=240)
        peak, cpu = proc_status_kib(pid, "VmHWM"), cpu_seconds(pid)
        requests = Counter(bench.operator_requests()[requests_before:])
        expo = bench.expo_calls(since=expo_before)
        eas_created = {
            str(build["message"]).split(".")[0]: _epoch(str(build["createdAt"]))
            for build in bench.stack.builds()
            if build.get("message") and build.get("createdAt")
        }
        bench.stop_operator(process)
        problems = bench.log_problems()
    harness_cpu = time.process_time() - harness_before
    writes = list(found.values())
    first_create = min(w.created_at for w in writes)
    succeeded = [w.reached("Succeeded") for w in writes]
    return Throughput(
        run=run,
        count=count,
        start_rate=rate,
        create_spread=max(w.created_at for w in writes) - first_create,
        all_succeeded=max(at or 0.0 for at in succeeded) - first_create,
        all_settled=max(w.last_write_at for w in writes) - first_create,
        pickup=[(w.first_write_at or w.created_at) - w.created_at for w in writes],
        eas_start=[eas_created[w.uid] - w.created_at for w in writes if w.uid in eas_created],
        peak_rss_kib=peak,
        ready_rss_kib=ready_rss,
        operator_cpu=cpu,
        ready_cpu=ready_cpu,
        harness_cpu=harness_cpu,
        expo_calls=expo,
        kube_writes=[w.total_writes for w in writes],
        status_writes=[w.writes["status"] for w in writes],
        metadata_writes=[w.writes["finalizer"] + w.writes["label"] for w in writes],
        events=[w.events_posted for w in writes],
        queued_writes=[w.status_by_phase["Queued"] for w in writes],
        kube_requests=requests,
        event_reasons=sum((w.event_reasons for w in writes), Counter()),
        busiest=max(writes, key=lambda w: w.total_writes),
        failed=sum(1 for at in succeeded if at is None),
        log_problems=problems,
    )


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _spread(values: list[int]) -> str:
    return f"{statistics.mean(values):.1f} (min {min(values)}, max {max(values)})"


def report(result: Throughput, *, detail: bool = False) -> str:
    r = result
    rss = f"{r.peak_rss_kib / 1024:.1f} MiB" if r.peak_rss_kib else "?"
    ready = f"{r.ready_rss_kib / 1024:.1f} MiB" if r.ready_rss_kib else "?"
    cpu = f"{r.operator_cpu:.1f}s" if r.operator_cpu is not None else "?"
    per_build = f"{r.cpu_per_build_ms:.0f} ms/build" if r.cpu_per_build_ms is not None else "?"
    lines = [
        f"== throughput: {r.run}, {r.count} builds, START_RATE {r.start_rate}",
        f"  all Succeeded      {r.all_succeeded:.2f}s (settled {r.all_settled:.2f}s; creates spread over"
        f" {r.create_spread:.2f}s; {r.failed} not Succeeded)",
        f"  pickup             p50 {percentile(r.pickup, 50) * 1000:.0f} ms,"
        f" p95 {percentile(r.pickup, 95) * 1000:.0f} ms, max {max(r.pickup) * 1000:.0f} ms",
        f"  EAS start          p50 {percentile(r.eas_start, 50):.2f}s,"
        f" p95 {percentile(r.eas_start, 95):.2f}s, max {max(r.eas_start):.2f}s",
        f"  operator           peak RSS {rss} (idle {ready}); CPU {cpu} ({per_build} after start-up);"
        f" harness CPU {r.harness_cpu:.1f}s",
        f"  Expo calls/build   {r.expo_per_build:.1f}",
        f"  K8s writes/build   {_spread(r.kube_writes)} = status {_spread(r.status_writes)}"
        f" + metadata {_spread(r.metadata_writes)} + Events {_spread(r.events)}",
        f"  Queued writes      {_spread(r.queued_writes)} per build",
        f"  K8s requests/build {r.requests_per_build:.1f}",
    ]
    lines.append(f"  log problems       {sum(r.log_problems.values())} operator WARNING/ERROR lines")
    lines += [f"    {n} x {line}" for line, n in r.log_problems.most_common(5)]
    if detail:
        per_build = ", ".join(f"{op} {n / r.count:.1f}" for op, n in r.expo_calls.most_common())
        lines.append(f"  Expo calls/build by operation: {per_build}")
        requests = ", ".join(f"{op} {n / r.count:.2f}" for op, n in r.kube_requests.most_common())
        lines.append(f"  K8s requests/build by kind: {requests}")
        reasons = ", ".join(f"{reason} {n / r.count:.2f}" for reason, n in r.event_reasons.most_common())
        lines.append(f"  Events/build by reason: {reasons}")
        b = r.busiest
        lines.append(f"  busiest resource {b.name}: {b.total_writes} writes, in commit order:")
        lines += [f"    +{at - b.created_at:6.3f}s {what}" for at, what in b.timeline]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Throughput]:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument(
        "--cel", action="store_true", help="keep the CRDs' CEL rules (the emulator then dominates)"
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="ios-testflight")
    parser.add_argument("--run", choices=RUNS, action="append")
    parser.add_argument("--detail", action="store_true", help="per-operation breakdowns")
    args = parser.parse_args(argv)
    results = []
    for run in args.run or list(RUNS):
        result = run_throughput(
            run, count=args.count, variant=args.variant, time_scale=args.time_scale, cel=args.cel
        )
        print(report(result, detail=args.detail), flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    main()
