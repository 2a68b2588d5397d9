"""Side by side with the old design: the same three scenarios, both sides, one table, with ratios.

    python -m bench.side_by_side [burst fleet ratelimit] [--quick] [--runs 3] [--peer DIR]

Our side (bench.operator_side) runs R times per scenario on the emulated API; the old design's
side (bench.peer) runs its own harness R times per scenario, where it is given (--peer DIR or
PUBLISHING_BENCH_PEER); without it only our side is printed, with a note on how to get it. Every
figure is the median of the runs; min-max of every figure follow the table (--detail: per-run
details). ratio = operator / old design: above 1 the operator needs more (time, CPU, memory,
requests), below 1 less. Sides never run at the same time.

--quick is the CI smoke size (burst 50; fleet 100 with D=30 s, P=5 s, a 15 s window; ratelimit
10) and asserts what must hold at any size: every build Succeeded, and never more than the limit's
starts in any sliding window of the ratelimit scenario (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import peer, shipped
from bench.operator_side import RunResult, run_once
from bench.scenarios import SCENARIO_NAMES, Scenario, median, scenario


@dataclass(frozen=True)
class Figure:
    label: str
    peer: str | None  # the harness's metric
    ours: str | None  # ours (bench.operator_side)
    digits: int = 1
    ratio: bool = True


FIGURES: dict[str, tuple[Figure, ...]] = {
    "burst": (
        Figure("CPU per build, ms (operator / worker process)", "worker_cpu_ms_per_job", "cpu_ms_per_build"),
        Figure("pickup p50, ms (create -> build request)", "pickup_p50_ms", "pickup_p50_ms", 0),
        Figure("pickup p99, ms", "pickup_p99_ms", "pickup_p99_ms", 0),
        Figure("drain, s (first create -> last done)", "drain_s", "drain_s", 2),
        Figure("peak RSS, MB", "worker_peak_rss_mb", "peak_rss_mb", 0),
        Figure("Expo (backend) requests per build", "stub_req_per_job", "expo_req_per_build", 2),
        Figure(
            "store requests per build (Redis / Kubernetes)", "redis_round_trips_per_job", "kube_req_per_build"
        ),
        Figure(
            "store CPU per build, ms (Redis / API server)",
            "redis_cpu_ms_per_job",
            "apiserver_cpu_ms_per_build",
        ),
        Figure("machine CPU busy, % of both cores", "host_cpu_busy_pct", "host_cpu_busy_pct", 0, ratio=False),
    ),
    "fleet": (
        Figure("ramp, s (first create -> all started)", "ramp_s", "ramp_s", 2),
        Figure("Expo (backend) requests per minute", "stub_req_per_min", "expo_req_per_min", 0),
        Figure("CPU, steady, % of one core", "worker_cpu_pct", "cpu_pct", 1),
        Figure("RSS, max in window, MB", "worker_rss_max_in_window_mb", "rss_max_in_window_mb", 0),
        Figure("pickup p99, ms", "pickup_p99_ms", "pickup_p99_ms", 0),
        Figure(
            "store requests per minute (Redis / Kubernetes)",
            "redis_round_trips_per_min",
            "kube_req_per_min",
            0,
        ),
        Figure("store CPU, % of one core (Redis / API server)", "redis_cpu_pct", "apiserver_cpu_pct", 1),
        Figure("machine CPU busy, % of both cores", "host_cpu_busy_pct", "host_cpu_busy_pct", 0, ratio=False),
    ),
    "ratelimit": (
        Figure(
            "most starts in any sliding window (limit 5)",
            "max_starts_in_any_window_stub",
            "max_starts_in_any_window",
            0,
            ratio=False,
        ),
        Figure(
            "latest waiting start after it was allowed, ms",
            "waited_lateness_max_ms",
            "waited_lateness_max_ms",
        ),
        Figure("waiting start after allowed, p50, ms", "waited_lateness_p50_ms", "waited_lateness_p50_ms"),
        Figure(
            "first window: slowest start, ms", "first_window_pickup_max_ms", "first_window_pickup_max_ms", 0
        ),
        Figure("drain, s", "drain_s", "drain_s", 2),
        Figure("CPU per build, ms", "worker_cpu_ms_per_job", "cpu_ms_per_build"),
    ),
}
NOTES = (
    "pickup: the operator's is measured to the simulator receiving the build request; the old "
    "design's harness measures to its processor starting (its create call follows ~4 ms later at "
    "C=50, ~110 ms at C=200: leg_create_call_p50_ms).",
    "store: Redis round trips (EVALSHA/EVAL + BZPOPMIN) vs every request the operator sends to the "
    "Kubernetes API (reads, status patches, Events); store CPU: the redis-server process vs the "
    "emulated API's thread.",
    "processes, as in the old design's harness: the operator (from the image's packages: "
    "bench.shipped), the Expo simulator, and the benchmark with the emulated API server in it.",
)


@dataclass
class OurSummary:
    metrics: dict[str, dict[str, float]]  # name -> {"median", "min", "max"}
    runs: list[RunResult]

    def median(self, name: str) -> float | None:
        entry = self.metrics.get(name)
        return None if entry is None else entry["median"]


def summarise(runs: Sequence[RunResult]) -> OurSummary:
    names = dict.fromkeys(k for r in runs for k in r.metrics)
    metrics = {}
    for name in names:
        values = [r.metrics[name] for r in runs if name in r.metrics and not math.isnan(r.metrics[name])]
        if values:
            metrics[name] = {"median": median(values), "min": min(values), "max": max(values)}
    return OurSummary(metrics, list(runs))


def fmt(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100 and digits > 0:
        digits = 0
    return f"{value:,.{digits}f}"


def ratio(ours: float | None, old: float | None) -> str:
    if ours is None or old is None or math.isnan(ours) or math.isnan(old) or old == 0:
        return "-"
    r = ours / old
    return f"{r:.2g}x" if r < 10 else f"{r:.0f}x"


def table(results: dict[str, tuple[OurSummary, list[peer.PeerSummary]]], *, label: str = "operator") -> str:
    lines = [
        f"| scenario | figure | old design | {label} | {label} / old |",
        "|---|---|---|---|---|",
    ]
    for name, (ours, peers) in results.items():
        first = True
        for figure in FIGURES[name]:
            mine = ours.median(figure.ours) if figure.ours else None
            olds = [(p, p.median(figure.peer)) for p in peers] if figure.peer else []
            tagged = len(olds) > 1
            old_cell = ", ".join(
                fmt(v, figure.digits) + (f" (C={p.concurrency})" if tagged else "") for p, v in olds
            )
            ratio_cell = ", ".join(
                ratio(mine, v) + (f" (C={p.concurrency})" if tagged else "") for p, v in olds
            )
            scen = describe(ours.runs[0].scenario) if first else ""
            lines.append(
                f"| {scen} | {figure.label} | {old_cell or '-'} | {fmt(mine, figure.digits)} "
                f"| {ratio_cell if figure.ratio and peers else '-'} |"
            )
            first = False
    return "\n".join(lines)


def describe(sc: Scenario) -> str:
    if sc.name == "fleet":
        return f"fleet {sc.n} in flight (build {sc.duration_ms / 1000:g} s, polls {sc.poll_ms / 1000:g} s)"
    if sc.name == "ratelimit":
        return f"ratelimit {sc.limit_max} per {sc.limit_window_ms / 1000:g} s, {sc.n} builds"
    return f"burst {sc.n} (build {sc.duration_ms:g} ms, polls {sc.poll_ms:g} ms)"


def spreads(results: dict[str, tuple[OurSummary, list[peer.PeerSummary]]]) -> str:
    lines = []
    for name, (ours, peers) in results.items():
        lines.append(f"{name}: operator, median (min-max) over {len(ours.runs)} runs:")
        for metric, s in ours.metrics.items():
            lines.append(f"  {metric:34} {fmt(s['median'], 2):>10}  ({fmt(s['min'], 2)}-{fmt(s['max'], 2)})")
        for p in peers:
            lines.append(f"{name}: old design C={p.concurrency}, median (min-max) over {p.runs} runs:")
            for metric, s in p.metrics.items():
                lines.append(
                    f"  {metric:34} {fmt(s['median'], 2):>10}  ({fmt(s['min'], 2)}-{fmt(s['max'], 2)})"
                )
    return "\n".join(lines)


def check_invariants(results: dict[str, tuple[OurSummary, list[peer.PeerSummary]]]) -> list[str]:
    """What must hold in every run, at any size: every build Succeeded; the start limit is exact."""
    problems = []
    for name, (ours, _) in results.items():
        for i, r in enumerate(ours.runs, 1):
            if r.metrics.get("not_succeeded", 0) > 0:
                problems.append(f"{name} run {i}: {r.metrics['not_succeeded']:.0f} builds did not succeed")
            most = r.metrics.get("max_starts_in_any_window")
            if most is not None and most > r.scenario.limit_max:
                problems.append(
                    f"{name} run {i}: {most:.0f} starts within {r.scenario.limit_window_ms:g} ms "
                    f"(limit {r.scenario.limit_max})"
                )
    return problems


def parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects name=value, got {pair!r}")
        settings[key.strip().lower().removeprefix("publishing_")] = value
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side", description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=" ".join(SCENARIO_NAMES) + " (all)")
    parser.add_argument("--quick", action="store_true", help="CI smoke size; asserts the invariants")
    parser.add_argument("--runs", type=int, default=None, help="runs per scenario and side (3; quick: 1)")
    parser.add_argument("--n", type=int, help="override the scenario's N")
    parser.add_argument("--peer", metavar="DIR", help=f"the old design's harness (or ${peer.ENV})")
    parser.add_argument("--no-peer", action="store_true", help="our side only, even if a harness is set")
    parser.add_argument(
        "--peer-concurrency",
        metavar="C,C",
        help="burst: the old design's worker concurrencies (default 50,200; quick: 50)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="operator setting override"
    )
    parser.add_argument(
        "--platform",
        choices=("ios", "android"),
        default="ios",
        help="our builds: iOS + TestFlight (a P-256 key) or Android + Google Play (an RSA key)",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy raw profiles (and the operator's logs) of our runs into DIR"
    )
    shipped.add_flag(parser)
    parser.add_argument("--json", metavar="PATH", help="write every figure of every run here")
    parser.add_argument("--detail", action="store_true", help="min-max of every figure, both sides")
    args = parser.parse_args(argv)

    runs = args.runs or (1 if args.quick else 3)
    names = args.scenarios or list(SCENARIO_NAMES)
    unknown = sorted(set(names) - set(SCENARIO_NAMES))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIO_NAMES)}")
    settings = parse_settings(args.set)
    source = None if args.no_peer else peer.locate(args.peer)
    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    load = os.getloadavg()
    results: dict[str, tuple[OurSummary, list[peer.PeerSummary]]] = {}
    for name in names:
        sc = scenario(name, quick=args.quick, n=args.n)
        peers: list[peer.PeerSummary] = []
        if source is not None:
            concurrencies: list[int | None] = [None]
            if name == "burst":
                default = "50" if args.quick else "50,200"
                concurrencies = [int(c) for c in (args.peer_concurrency or default).split(",")]
            for c in concurrencies:
                say(f"{name}: old design, C={c or sc.peer_concurrency or sc.n}, {runs} runs ...")
                peers.append(peer.run(source, sc, runs=runs, concurrency=c))
        ours = []
        for i in range(1, runs + 1):
            say(f"{name}: operator, run {i}/{runs} ...")
            out = profile_dir / f"{sc.tag}-{i}.txt" if profile_dir else None
            log = profile_dir / f"{sc.tag}-{i}.log" if profile_dir else None
            result = run_once(
                sc,
                settings=settings,
                profile=out,
                platform=args.platform,
                log=log,
                environment=args.operator_env,
            )
            say(f"  {json.dumps(result.metrics)}")
            ours.append(result)
        results[name] = (summarise(ours), peers)

    print()
    print(
        f"side by side, {'quick' if args.quick else 'full'} size, medians of {runs} run(s); "
        f"{os.cpu_count()} CPUs, load average at start {load[0]:.1f}; {time.monotonic() - started:.0f} s"
    )
    if args.platform != "ios":
        print(f"operator builds: {args.platform}")
    if settings:
        print("operator settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print()
    print(table(results))
    print()
    for note in NOTES:
        print(f"- {note}")
    if source is None:
        print(f"- old design: not run; {peer.HOW_TO_GET}")
    else:
        versions = next((p.versions for _, ps in results.values() for p in ps), {})
        print("- old design: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if args.detail:
        print()
        print(spreads(results))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results, load, settings), indent=1))
    problems = check_invariants(results)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def to_json(
    results: dict[str, tuple[OurSummary, list[peer.PeerSummary]]],
    load: tuple[float, float, float],
    settings: dict[str, str],
) -> dict[str, Any]:
    return {
        "loadavg_at_start": load,
        "settings": settings,
        "scenarios": {
            name: {
                "scenario": asdict(ours.runs[0].scenario),
                "operator": {
                    "summary": ours.metrics,
                    "runs": [{"metrics": r.metrics, "detail": r.detail} for r in ours.runs],
                },
                "old_design": [asdict(p) for p in peers],
            }
            for name, (ours, peers) in results.items()
        },
    }


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
