"""The cost of one build: one PublishingBuild from creation until the operator is done with it.

Variants (fixed specs on the example Secrets, GitHub source):
  ios-testflight      iOS build + TestFlight submission
  android-build-only  Android build, no submission

Timeline: the simulator's Expo-realistic defaults (NEW 2 s, queue 30 s, build 600 s, GitHub receipt
2 s, submission queue 10 s + 60 s) and the operator's default poll intervals (POLL_BUILD 30 s,
POLL_SUBMISSION 15 s) are both multiplied by `--time-scale` (default 0.005: the build takes ~3 s).
START_RATE is the default 5/60s (one build is never throttled). Not scaled: the Expo client's 1 s
GitHub-receipt poll interval. ~200 simulated seconds of queue and build pass inside that wait, so
BuildById counts ~14 where a real build makes ~21 (632 s / 30 s); the wall time barely changes
(the build's clock runs during the wait). The ideal wall time is 702 s x time_scale (3.51 s).

What each number counts:
  wall time      from the API server committing the create to committing the status write that
                 set phase Succeeded; "settled" = the last write for the object (result label on,
                 finalizer off, Events posted).
  K8s writes     MODIFIED events of the PublishingBuild in the emulator's watch event log after
                 its ADDED event (every committed write yields exactly one), split by what changed:
                 status (status subresource), finalizer, label; plus core/v1 Events whose
                 involvedObject is this PublishingBuild.
  Expo calls     every GraphQL request the simulator received after the create, by operation name.
  total          K8s writes + Expo calls.
  K8s requests   every request the operator sent to the API after the create (reads included:
                 Secret GETs, PATCHes, Event POSTs), from the emulator's request log.

The CRDs are applied without their CEL rules unless --cel (see bench.stack.bench_stack).

Run: python -m bench.one_build [--time-scale 0.005] [--variant NAME] [--cel] [--detail]
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.fixtures.operator import publishing_build

from bench.stack import DEFAULT_TIME_SCALE, ResourceWrites, bench_stack, cpu_seconds

VARIANTS: dict[str, dict[str, Any]] = {
    "ios-testflight": {"platform": "ios", "submit": True},
    "android-build-only": {"platform": "android", "submit": False},
}


@dataclass
class OneBuild:
    variant: str
    to_succeeded: float
    to_settled: float
    writes: ResourceWrites
    expo_calls: Counter[str]
    kube_requests: Counter[str]
    phases: list[tuple[float, str]] = field(default_factory=list)  # (seconds after create, phase)
    operator_cpu: float | None = None  # CPU seconds of the operator process, start-up included
    log_problems: Counter[str] = field(default_factory=Counter)  # operator WARNING/ERROR lines

    @property
    def kube_writes(self) -> int:
        return self.writes.total_writes

    @property
    def expo_total(self) -> int:
        return sum(self.expo_calls.values())

    @property
    def total(self) -> int:
        return self.kube_writes + self.expo_total


def run_variant(variant: str, *, time_scale: float = DEFAULT_TIME_SCALE, cel: bool = False) -> OneBuild:
    name = f"bench-{variant}"
    with bench_stack(time_scale=time_scale, cel=cel) as bench:
        process = bench.start_operator(start_rate="5/60s")
        expo_before = bench.expo_call_count()
        requests_before = len(bench.operator_requests())
        bench.create([publishing_build(name, **VARIANTS[variant])])
        writes = bench.wait_settled({name}, timeout=90)[name]
        assert process.process is not None
        cpu = cpu_seconds(process.process.pid)
        requests = Counter(bench.operator_requests()[requests_before:])
        expo = bench.expo_calls(since=expo_before)
        bench.stop_operator(process)
        problems = bench.log_problems()
    succeeded = writes.reached("Succeeded")
    if succeeded is None:
        raise RuntimeError(f"{name} did not succeed: {writes.final.get('status')}")
    return OneBuild(
        variant=variant,
        to_succeeded=succeeded - writes.created_at,
        to_settled=writes.last_write_at - writes.created_at,
        writes=writes,
        expo_calls=expo,
        kube_requests=requests,
        phases=[(at - writes.created_at, phase) for at, phase in writes.phases],
        operator_cpu=cpu,
        log_problems=problems,
    )


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def report(result: OneBuild, *, detail: bool = False) -> str:
    w = result.writes
    lines = [
        f"== one build: {result.variant}",
        f"  wall time    created -> Succeeded {result.to_succeeded:.2f}s;"
        f" -> settled {result.to_settled:.2f}s",
        "  phases       " + ", ".join(f"{phase} +{at:.2f}s" for at, phase in result.phases),
        f"  K8s writes   {result.kube_writes} = object {w.object_writes} ({_counts(w.writes)})"
        f" + Events {w.events_posted}",
        f"  Events       {_counts(w.event_reasons)}",
        f"  Expo calls   {result.expo_total} = {_counts(result.expo_calls)}",
        f"  total        {result.total} (K8s writes + Expo calls)",
        f"  K8s requests {sum(result.kube_requests.values())} = {_counts(result.kube_requests)}",
    ]
    if result.operator_cpu is not None:
        lines.append(f"  operator CPU {result.operator_cpu:.2f}s (process lifetime, start-up included)")
    lines.append(f"  log problems {sum(result.log_problems.values())} operator WARNING/ERROR lines")
    lines += [f"    {n} x {line}" for line, n in result.log_problems.most_common(5)]
    if detail:
        lines.append("  every write and Event, in commit order (status: the keys it changed):")
        lines += [f"    +{at - w.created_at:6.3f}s {what}" for at, what in w.timeline]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[OneBuild]:
    parser = argparse.ArgumentParser(prog="python -m bench.one_build", description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument(
        "--cel", action="store_true", help="keep the CRDs' CEL rules (the emulator then dominates)"
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    parser.add_argument("--detail", action="store_true", help="which status keys each write changed")
    args = parser.parse_args(argv)
    results = []
    for variant in args.variant or list(VARIANTS):
        result = run_variant(variant, time_scale=args.time_scale, cel=args.cel)
        print(report(result, detail=args.detail), flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    main()
