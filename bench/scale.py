"""The scale curve (issue 14): the operator with 100, 1,000 and 5,000 builds in flight.

    python -m bench.scale [--sizes 100,1000,5000] [--runs 1] [--window 60] [--json PATH]

Per size N, one fresh run of the fleet scenario's shape (bench.operator_side) at production poll
intervals: N builds created at once (start limiter out of the way), every build long enough to stay
in flight through the measurement (D = 30 minutes), polled every P = 30 s (POLL_BUILD's default).
Once every build is requested and recorded in status, a settle of 5 s, then a window (60 s) in which
the steady state is measured: the operator's CPU, RSS, and the requests it sends to the Kubernetes
API and to Expo. The ramp (first create -> every build requested) and the operator's CPU in it are
the start-up cost.

Printed per N, with "per build" figures (divided by N): cost that grows at most linearly shows as
a per-build figure that stays flat or falls from one size to the next. Against the emulated API
(the same as the side-by-side run): its CPU is in this process, not the operator's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import shipped
from bench.operator_side import RunResult, run_once
from bench.scenarios import FULL, Scenario
from bench.side_by_side import fmt, parse_settings, say, summarise

SIZES = (100, 1000, 5000)
POLL_MS = 30_000.0  # POLL_BUILD's default
DURATION_MS = 30 * 60 * 1000.0  # in flight through the whole measurement, at every size


def scale_scenario(n: int, *, window_s: float, settle_s: float = 5.0) -> Scenario:
    return replace(
        FULL["fleet"],
        n=n,
        duration_ms=DURATION_MS,
        poll_ms=POLL_MS,
        window_s=window_s,
        settle_s=settle_s,
    )


# (label, key in the run's metrics or a function of them, digits, per build: divide by N)
ROWS: tuple[tuple[str, str, int, bool], ...] = (
    ("ramp, s (first create -> every build requested)", "ramp_s", 1, False),
    ("ramp: operator CPU per build, ms", "ramp_operator_cpu_s", 2, True),
    ("steady: operator CPU, % of one core", "cpu_pct", 2, False),
    ("steady: operator CPU per build, µs per second", "cpu_pct", 2, True),
    ("RSS, MB (max in window)", "rss_max_in_window_mb", 0, False),
    ("RSS above idle per build, KB", "rss_above_idle_mb", 1, True),
    ("Kubernetes requests per minute", "kube_req_per_min", 0, False),
    ("Kubernetes requests per build per minute", "kube_req_per_min", 3, True),
    ("Expo requests per minute", "expo_req_per_min", 0, False),
    ("Expo requests per build per minute", "expo_req_per_min", 3, True),
    ("emulated API server CPU, % of one core", "apiserver_cpu_pct", 1, False),
)
SCALE = {  # units of the per-build rows
    "ramp_operator_cpu_s": 1000.0,  # s -> ms
    "cpu_pct": 10_000.0,  # % of a core -> µs of CPU per second
    "rss_above_idle_mb": 1024.0,  # MB -> KB
}


def per_size(result: RunResult) -> dict[str, float]:
    m = dict(result.metrics)
    m["rss_above_idle_mb"] = m.get("rss_max_in_window_mb", 0.0) - m.get("idle_rss_mb", 0.0)
    return m


def table(sizes: list[int], medians: dict[int, dict[str, float]]) -> str:
    lines = [
        "| figure | " + " | ".join(f"{n:,} in flight" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for label, key, digits, per_build in ROWS:
        cells = []
        for n in sizes:
            value = medians[n].get(key)
            if value is not None and per_build:
                value = value * SCALE.get(key, 1.0) / n
            cells.append(fmt(value, digits))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth(sizes: list[int], medians: dict[int, dict[str, float]]) -> list[str]:
    """Per-build figures that grew by more than 25 % from one size to the next (superlinear cost)."""
    problems = []
    for label, key, _, per_build in ROWS:
        if not per_build or key == "rss_above_idle_mb":  # RSS per build falls as fixed memory spreads
            continue
        for small, large in itertools.pairwise(sizes):
            a, b = medians[small].get(key), medians[large].get(key)
            if a and b and b / large > 1.25 * a / small:
                problems.append(f"{label}: {a / small:.4g} at {small} -> {b / large:.4g} at {large}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="builds in flight, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per size (median)")
    parser.add_argument("--window", type=float, default=60.0, help="the steady-state window, s")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="operator setting override"
    )
    shipped.add_flag(parser)
    parser.add_argument("--json", metavar="PATH", help="write every figure of every run here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    settings = parse_settings(args.set)
    started = time.monotonic()
    load = os.getloadavg()
    medians: dict[int, dict[str, float]] = {}
    runs: dict[int, list[dict[str, Any]]] = {}
    for n in sizes:
        sc = scale_scenario(n, window_s=args.window)
        results = []
        for i in range(1, args.runs + 1):
            say(f"scale: {n} in flight, run {i}/{args.runs} ...")
            result = run_once(sc, settings=settings, environment=args.operator_env)
            metrics = per_size(result)
            say(f"  {json.dumps(metrics)}")
            results.append(RunResult(sc, metrics, result.detail))
        summary = summarise(results)
        medians[n] = {name: s["median"] for name, s in summary.metrics.items()}
        runs[n] = [{"metrics": r.metrics, "detail": r.detail} for r in results]
    print()
    print(
        f"scale curve: builds in flight, polled every {POLL_MS / 1000:g} s, window {args.window:g} s; "
        f"medians of {args.runs} run(s); {os.cpu_count()} CPUs, load average at start {load[0]:.1f}; "
        f"{time.monotonic() - started:.0f} s"
    )
    print()
    print(table(sizes, medians))
    problems = growth(sizes, medians)
    print()
    for problem in problems:
        print(f"- grows faster than linearly: {problem}")
    if not problems:
        print(
            "- every per-build figure stays within 25 % from one size to the next: "
            "cost grows at most linearly"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"loadavg_at_start": load, "settings": settings, "runs": runs}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
