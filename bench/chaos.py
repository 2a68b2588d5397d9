"""`python -m bench.chaos`: a longer chaos run than CI's, with the same plan generator and invariants.

    .venv/bin/python -m bench.chaos --seed 7 --resources 200 --minutes 10

Kills, SIGTERMs and faults scale with the duration (CI's run: 10 kills and about 100 Expo and 30
Kubernetes faults in 2 minutes). Prints the summary the issue asks for and every violation with its
detail; exits 1 when an invariant broke. Logs stay in --workdir (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.chaos.plan import ChaosConfig
from tests.chaos.run import run_chaos


def config_from(args: argparse.Namespace) -> ChaosConfig:
    duration = args.minutes * 60.0
    per_minute = duration / 60.0
    return ChaosConfig(
        seed=args.seed,
        resources=args.resources,
        duration=duration,
        kills=args.kills if args.kills is not None else max(10, round(5 * per_minute)),
        sigterms=max(2, round(per_minute)),
        expo_faults=max(60, round(40 * per_minute)),
        kube_faults=max(30, round(15 * per_minute)),
        outage_seconds=args.outage,
        time_scale=args.time_scale,
        settle_timeout=max(240.0, duration / 2),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the timeline")
    parser.add_argument(
        "--kills", type=int, default=None, help="SIGKILLs (default: 5 per minute, at least 10)"
    )
    parser.add_argument(
        "--outage", type=float, default=30.0, help="seconds of Kubernetes API outage (0: none)"
    )
    parser.add_argument(
        "--time-scale", type=float, default=0.01, help="Expo durations scale (0.01: 6 s builds)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where logs go (kept)")
    parser.add_argument("--json", action="store_true", help="print the violations as JSON lines too")
    args = parser.parse_args(argv)
    config = config_from(args)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"chaos-{config.seed}-"))
    print(f"chaos: seed {config.seed}, {config.resources} resources, {config.duration:g}s, logs in {workdir}")
    report = run_chaos(config, workdir)
    print(report.summary())
    print(
        "Expo faults by operation: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report.expo_fault_operations.items()))
    )
    for violation in report.violations:
        print(f"\n{violation}")
        if args.json:
            print(
                json.dumps(
                    {"invariant": violation.invariant, "what": violation.what, **violation.detail},
                    default=str,
                )
            )
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
