"""`python -m bench`: every benchmark with its defaults, each one's report, then one compact table.

Options: --count N (throughput resources, default 50), --time-scale S (default 0.005), --cel.
See bench/one_build.py and bench/throughput.py for what each number counts.
"""

from __future__ import annotations

import argparse
import os
import time

from bench import one_build, throughput
from bench.stack import DEFAULT_TIME_SCALE

COLUMNS = (
    ("benchmark", 34),
    ("wall s", 8),
    ("K8s writes/b", 18),
    ("Expo calls/b", 14),
    ("total/b", 9),
    ("pickup p50/p95 ms", 19),
    ("peak RSS MiB", 14),
)


def row(*cells: str) -> str:
    first, *rest = zip(cells, COLUMNS, strict=True)
    return f"{first[0]:<{first[1][1]}}" + "".join(f"{cell:>{width}}" for cell, (_, width) in rest)


def table(builds: list[one_build.OneBuild], runs: list[throughput.Throughput]) -> str:
    header = row(*(name for name, _ in COLUMNS))
    lines = [header, "-" * len(header)]
    for b in builds:
        w = b.writes
        metadata = w.writes["finalizer"] + w.writes["label"]
        writes = f"{b.kube_writes} ({w.writes['status']}s+{metadata}m+{w.events_posted}e)"
        lines.append(
            row(
                f"one build {b.variant}",
                f"{b.to_succeeded:.2f}",
                writes,
                str(b.expo_total),
                str(b.total),
                "-",
                "-",
            )
        )
    for r in runs:
        mean_writes = sum(r.kube_writes) / r.count
        p50, p95 = (throughput.percentile(r.pickup, q) * 1000 for q in (50, 95))
        lines.append(
            row(
                f"throughput {r.run} x{r.count}",
                f"{r.all_succeeded:.2f}",
                f"{mean_writes:.1f}",
                f"{r.expo_per_build:.1f}",
                f"{mean_writes + r.expo_per_build:.1f}",
                f"{p50:.0f}/{p95:.0f}",
                f"{r.peak_rss_kib / 1024:.1f}" if r.peak_rss_kib else "?",
            )
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument(
        "--cel", action="store_true", help="keep the CRDs' CEL rules (the emulator then dominates)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    scale = ["--time-scale", str(args.time_scale), *(["--cel"] if args.cel else [])]
    builds = one_build.main(scale)
    runs = throughput.main([*scale, "--count", str(args.count)])
    print(
        f"\n== summary (time_scale {args.time_scale}, {os.cpu_count()} CPUs,"
        f" {time.monotonic() - started:.0f}s in all; wall s = to Succeeded, /b = per build;"
        " writes: s status, m metadata, e Events)"
    )
    print(table(builds, runs))


if __name__ == "__main__":
    main()
