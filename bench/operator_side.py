"""Our side of the side-by-side benchmark: one run of a scenario (bench.scenarios) with the real operator.

The operator is `python -m publishing_operator run`, a child process (in the shipped environment,
bench.shipped), against a control plane (bench.controlplane: the emulated API for now) and the Expo
simulator (its own process, bench.expo_process). Every PublishingBuild is the same iOS build of a
GitHub ref with a TestFlight submission (or, with platform="android", an Android build with a
Google Play submission), on the example Secrets. The simulator answers like the old design's stub:
time scale 1, a build is IN_PROGRESS from the moment Expo creates it and FINISHED `D` later, a
GitHub build request's receipt succeeds at once, a submission is FINISHED when created. The
operator polls builds and submissions every `P` and starts at most `limit_max` builds per
`limit_window` (START_RATE).

One run, as the harness does it: start everything; push one warm-up build through (D=0) and, for
ratelimit, let its start leave the window; snapshot; create the N resources at once (one concurrent
POST each, call times kept); wait until every one is settled (Succeeded, labelled, finalizer gone),
or for fleet: until the simulator has seen every build request (ramp) and every resource has its
build id in status, `settle` s, then a `window` of `window_s` (RSS sampled every second); snapshot
again.

Figures (the harness's names where the meaning is the same; see bench.scenarios):
  pickup_pXX_ms        create call -> the simulator receiving that resource's createGitHubBuild
  drain_s              first create call -> the last status write setting Succeeded
  cpu_ms_per_build     operator process user+system CPU, snapshot to snapshot, / N
  idle_rss_mb          operator VmRSS once it watches, before the warm-up; peak_rss_mb its VmHWM
  expo_req_per_build   GraphQL requests the simulator received, / N
  kube_req_per_build   requests the operator sent to the API server (reads too), / N
  kube_writes_per_build  committed writes to each PublishingBuild + its Events (mean)
  apiserver_cpu_ms_per_build, simulator_cpu_ms_per_build  the emulator's / simulator's thread CPU
  host_cpu_busy_pct    the whole machine (/proc/stat), both cores, snapshot to snapshot
  fleet: ramp_s (first create call -> simulator saw every build request; ramp_*_cpu_s: CPU seconds
         the operator / API server / simulator spent in it), ramp_recorded_s (-> every resource has
         its build id in status: the settle and window start after it), cpu_pct (of one core),
         rss_mb (window end), rss_max_in_window_mb, expo_req_per_min, expo_polls_per_min
         (builds asked for by BuildById or a coalesced BuildsById), kube_req_per_min,
         apiserver_cpu_pct, simulator_cpu_pct
  ratelimit: max_starts_in_any_window (simulator clock), waited_lateness_{p50,max,min}_ms,
         first_window_pickup_max_ms
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.operator import EXAMPLE_TOKEN, OperatorProcess, publishing_build

from bench.controlplane import ControlPlane, EmulatedControlPlane
from bench.expo_process import ExpoProcess
from bench.scenarios import Scenario, lateness, max_in_any_window, percentile
from bench.shipped import clean_env, operator_python, shipped_python
from bench.stack import (
    GROUP,
    PLURAL,
    cpu_seconds,
    is_settled,
    log_problems,
    proc_status_kib,
    resource_writes,
)
from publishing_testkit.expo_simulator.state import SimulatorConfig

WARMUP = "warmup"


@dataclass
class RunResult:
    scenario: Scenario
    metrics: dict[str, float]
    detail: dict[str, Any] = field(default_factory=dict)


def simulator_config(duration_ms: float) -> SimulatorConfig:
    """The old design's stub in Expo's shape: a build is done `duration_ms` after it was requested."""
    return SimulatorConfig(
        time_scale=1.0,
        new_seconds=0.0,
        queue_seconds=0.0,
        build_seconds=duration_ms / 1000,
        receipt_seconds=0.0,
        submit_queue_seconds=0.0,
        submit_seconds=0.0,
    )


def operator_settings(sc: Scenario, **overrides: str) -> dict[str, str]:
    """PUBLISHING_* settings of the scenario; `overrides` (setting name -> value) win."""
    settings = {
        "expo_simulator": "true",  # the scenario's intervals are below the production floors
        "poll_build": f"{sc.poll_ms:g}ms",
        "poll_submission": f"{sc.poll_ms:g}ms",
        "start_rate": f"{sc.limit_max}/{sc.limit_window_ms:g}ms",
        "health_port": "0",
        "metrics_port": "0",
        "log_format": "plain",
        **overrides,
    }
    return {f"PUBLISHING_{k.upper()}": v for k, v in settings.items()}


# ---- the pieces of one run ------------------------------------------------------------------------


def ref(name: str) -> str:
    return publishing_build(name)["spec"]["source"]["github"]["ref"]


def host_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


@dataclass
class Snapshot:
    at: float
    operator_cpu: float
    apiserver_cpu: float | None
    simulator_cpu: float | None
    expo_calls: int
    kube_requests: int | None
    host: tuple[int, int]
    rss_kib: int
    hwm_kib: int


class Run:
    """One scenario run: the control plane, the simulator and the operator process."""

    def __init__(
        self, sc: Scenario, plane: ControlPlane, expo: ExpoProcess, operator: OperatorProcess
    ) -> None:
        self.sc = sc
        self.plane = plane
        self.expo = expo
        self.operator = operator
        assert operator.process is not None
        self.pid = operator.process.pid
        self._seen = 0
        self.latest: dict[str, dict[str, Any]] = {}  # name -> newest PublishingBuild seen

    def snapshot(self) -> Snapshot:
        requests = self.plane.operator_requests()
        return Snapshot(
            at=time.time(),
            operator_cpu=cpu_seconds(self.pid) or 0.0,
            apiserver_cpu=self.plane.cpu_seconds(),
            simulator_cpu=self.expo.cpu_seconds(),
            expo_calls=self.expo.call_count(),
            kube_requests=None if requests is None else sum(requests.values()),
            host=host_ticks(),
            rss_kib=proc_status_kib(self.pid, "VmRSS") or 0,
            hwm_kib=proc_status_kib(self.pid, "VmHWM") or 0,
        )

    def _catch_up(self) -> None:
        fresh = self.plane.recorded(self._seen)
        self._seen += len(fresh)
        for item in fresh:
            if (item.event.group, item.event.plural) == (GROUP, PLURAL):
                self.latest[str(item.event.obj.get("metadata", {}).get("name"))] = item.event.obj

    def until(self, done: Any, timeout: float, what: str, every: float = 0.05) -> None:
        """Wait for `done()` with a deadline; fail with the operator's log tail."""
        deadline = time.monotonic() + timeout
        while not done():
            if not self.operator.alive:
                raise RuntimeError(f"the operator exited while waiting for {what}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not reached in {timeout:.0f}s\n{self.log_tail()}")
            time.sleep(every)

    def settled(self, names: set[str]) -> bool:
        self._catch_up()
        return all(is_settled(self.latest.get(n)) for n in names)

    def recorded_builds(self, names: set[str]) -> bool:
        """Every named resource has its EAS build id in status."""
        self._catch_up()
        return all(((self.latest.get(n) or {}).get("status") or {}).get("build", {}).get("id") for n in names)

    def log_tail(self) -> str:
        return self.operator.logs()[-4000:]

    def log_problems(self) -> Counter[str]:
        return log_problems(self.operator.logs())


@contextlib.contextmanager
def operator_process(
    plane: ControlPlane, expo_url: str, env: dict[str, str], log: Path, python: Path
) -> Iterator[OperatorProcess]:
    command = [str(python), "-m", "publishing_operator", "run", "--kubeconfig", str(plane.kubeconfig)]
    full_env = {
        **(os.environ if python == Path(sys.executable) else clean_env(dict(os.environ))),
        "PUBLISHING_EXPO_API_URL": expo_url,
        "KUBECONFIG": str(plane.kubeconfig),
        **env,
    }
    process = OperatorProcess(command, full_env, log).start()
    try:
        yield process
    finally:
        if process.alive:
            process.signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """Sample the operator with py-spy (raw collapsed stacks) while the block runs, if `out`."""
    if out is None:
        yield
        return
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, when not on PATH
    binary = str(beside) if beside.exists() else shutil.which("py-spy")
    if binary is None:
        raise RuntimeError("--profile needs py-spy: pip install -e '.[bench]'")
    command = [binary, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "-o", str(out)]
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        try:
            sampler.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sampler.kill()


# ---- one run --------------------------------------------------------------------------------------


def run_once(
    sc: Scenario,
    *,
    settings: dict[str, str] | None = None,
    profile: Path | None = None,
    platform: str = "ios",
    cel: bool = False,
    log: Path | None = None,
    environment: str = "shipped",
) -> RunResult:
    """One run of `sc` on the emulated API. `settings`: operator setting overrides (name -> value);
    `platform`: ios (TestFlight submission, a P-256 .p8 key) or android (Play, an RSA key);
    `environment`: the operator's Python environment (bench.shipped: shipped or dev)."""
    python = operator_python(environment)
    with EmulatedControlPlane.started(cel=cel) as plane:
        return run_on(
            plane, sc, settings=settings, profile=profile, platform=platform, log=log, python=python
        )


def run_on(
    plane: ControlPlane,
    sc: Scenario,
    *,
    settings: dict[str, str] | None = None,
    profile: Path | None = None,
    platform: str = "ios",
    log: Path | None = None,
    python: Path | None = None,
) -> RunResult:
    """`log`: where the operator's log goes (default: a temporary file); `python`: the operator's
    interpreter (default: the shipped environment, bench.shipped)."""
    names = [f"pb-{i:04d}" for i in range(sc.n)]
    with (
        tempfile.TemporaryDirectory(prefix="publishing-bench-op-") as tmp,
        ExpoProcess(tokens={EXAMPLE_TOKEN}, config=simulator_config(0)) as expo,
        operator_process(
            plane,
            expo.graphql_url,
            operator_settings(sc, **(settings or {})),
            log or Path(tmp) / "operator.log",
            python or shipped_python(),
        ) as process,
    ):
        run = Run(sc, plane, expo, process)
        if plane.operator_requests() is not None:
            run.until(
                lambda: any(r.startswith("WATCH publishingbuilds") for r in plane.operator_requests() or ()),
                60,
                "the operator watching",
            )
        idle_rss = proc_status_kib(run.pid, "VmRSS") or 0

        # Warm-up: one build through the whole path (imports done, connections open, code hot).
        plane.create_at_once([publishing_build(WARMUP, platform=platform)])
        run.until(lambda: run.settled({WARMUP}), 60 + 2 * sc.poll_ms / 1000, "the warm-up build")
        if sc.name == "ratelimit":  # let the warm-up's start leave the limiter's window
            started = expo.build_requests()[ref(WARMUP)]
            run.until(lambda: time.time() > started + sc.limit_window_ms / 1000 + 0.2, 60, "window")
        expo.configure(build_seconds=sc.duration_ms / 1000)
        calls_before = expo.call_count()

        before = run.snapshot()
        with py_spy(run.pid, profile):
            called = plane.create_at_once([publishing_build(name, platform=platform) for name in names])
            metrics: dict[str, float] = {}
            refs = {ref(name): name for name in names}
            if sc.name == "fleet":
                window = measure_fleet(run, sc, refs, before, metrics)
                after = window
            else:
                run.until(lambda: run.settled(set(names)), 300 + sc.n, "every build settled", every=0.1)
                after = run.snapshot()
        expo_ops = expo.calls(calls_before)
        build_requests = expo.build_requests()
        problems = run.log_problems()

    requests_after = plane.operator_requests()
    started_at = {refs[r]: t for r, t in build_requests.items() if r in refs}
    writes = {w.name: w for w in resource_writes(plane.recorded()).values() if w.name in called}
    first_call = min(called.values())
    pickup = [(started_at[n] - called[n]) * 1000 for n in names if n in started_at]
    metrics.update(
        {
            "pickup_p50_ms": percentile(pickup, 50),
            "pickup_p95_ms": percentile(pickup, 95),
            "pickup_p99_ms": percentile(pickup, 99),
            "idle_rss_mb": idle_rss / 1024,
            "peak_rss_mb": after.hwm_kib / 1024,
            "log_problems": sum(problems.values()),
        }
    )
    if sc.name == "fleet":
        # Builds that finished before the window closed (a slow ramp lets the first ones finish in
        # it: their submissions and final writes are then in the window's counts).
        done = [w.reached("Succeeded") for w in writes.values()]
        metrics["succeeded_by_window_end"] = float(sum(1 for at in done if at is not None and at <= after.at))
    else:
        succeeded = [w.reached("Succeeded") for w in writes.values()]
        elapsed = after.at - before.at
        metrics.update(
            {
                "drain_s": max((at or 0.0) for at in succeeded) - first_call,
                "not_succeeded": float(sum(1 for at in succeeded if at is None) + sc.n - len(writes)),
                "cpu_ms_per_build": (after.operator_cpu - before.operator_cpu) * 1000 / sc.n,
                "expo_req_per_build": (after.expo_calls - before.expo_calls) / sc.n,
                "kube_writes_per_build": sum(w.total_writes for w in writes.values()) / max(1, len(writes)),
                "host_cpu_busy_pct": busy_pct(before.host, after.host),
                "wall_s": elapsed,
            }
        )
        if after.kube_requests is not None and before.kube_requests is not None:
            metrics["kube_req_per_build"] = (after.kube_requests - before.kube_requests) / sc.n
        if after.apiserver_cpu is not None and before.apiserver_cpu is not None:
            metrics["apiserver_cpu_ms_per_build"] = (after.apiserver_cpu - before.apiserver_cpu) * 1000 / sc.n
        if after.simulator_cpu is not None and before.simulator_cpu is not None:
            metrics["simulator_cpu_ms_per_build"] = (after.simulator_cpu - before.simulator_cpu) * 1000 / sc.n
    if sc.name == "ratelimit":
        window = sc.limit_window_ms
        starts = [t * 1000 for t in started_at.values()]
        late = lateness(starts, [t * 1000 for t in called.values()], sc.limit_max, window)
        waited = late[sc.limit_max :]
        metrics.update(
            {
                "max_starts_in_any_window": float(max_in_any_window(starts, window)),
                "waited_lateness_p50_ms": percentile(waited, 50),
                "waited_lateness_max_ms": max(waited),
                "waited_lateness_min_ms": min(waited),
                "first_window_pickup_max_ms": max(late[: sc.limit_max]),
            }
        )
    detail: dict[str, Any] = {
        "expo_calls": dict(expo_ops.most_common()),
        "log_problems": dict(problems.most_common(10)),
    }
    if requests_after is not None:
        detail["kube_requests_total"] = dict(requests_after.most_common())
    return RunResult(sc, {k: round(v, 3) for k, v in metrics.items()}, detail)


def measure_fleet(
    run: Run, sc: Scenario, refs: dict[str, str], before: Snapshot, metrics: dict[str, float]
) -> Snapshot:
    """Ramp (every build requested), `settle`, then the window; returns the window-end snapshot."""
    run.until(
        lambda: len(refs.keys() & run.expo.build_requests().keys()) >= len(refs),
        600,
        "every build requested",
        every=0.25,
    )
    metrics["ramp_s"] = time.time() - before.at
    # Who was busy during the ramp: the operator, or the API server and simulator (this process)?
    ramp = run.snapshot()
    metrics["ramp_operator_cpu_s"] = ramp.operator_cpu - before.operator_cpu
    if ramp.apiserver_cpu is not None and before.apiserver_cpu is not None:
        metrics["ramp_apiserver_cpu_s"] = ramp.apiserver_cpu - before.apiserver_cpu
    if ramp.simulator_cpu is not None and before.simulator_cpu is not None:
        metrics["ramp_simulator_cpu_s"] = ramp.simulator_cpu - before.simulator_cpu
    metrics["ramp_host_cpu_busy_pct"] = busy_pct(before.host, ramp.host)
    # A GitHub build request becomes a build a step later (its receipt names it): the window starts
    # only once every resource has its build id in status too, or it would count the starts' tail.
    names = set(refs.values())
    run.until(lambda: run.recorded_builds(names), 600, "every build recorded in status", every=0.25)
    metrics["ramp_recorded_s"] = time.time() - before.at
    time.sleep(sc.settle_s)
    a = run.snapshot()
    polls_a = run.expo.builds_polled()
    max_rss = 0
    end = a.at + sc.window_s
    while time.time() < end:  # RSS once a second, as the harness samples its worker
        time.sleep(max(0.0, min(1.0, end - time.time())))
        max_rss = max(max_rss, proc_status_kib(run.pid, "VmRSS") or 0)
    b = run.snapshot()
    span = b.at - a.at
    per_min = 60 / span
    metrics.update(
        {
            "window_s": span,
            "cpu_pct": (b.operator_cpu - a.operator_cpu) / span * 100,
            "rss_mb": b.rss_kib / 1024,
            "rss_max_in_window_mb": max_rss / 1024,
            "expo_req_per_min": (b.expo_calls - a.expo_calls) * per_min,
            "expo_polls_per_min": (run.expo.builds_polled() - polls_a) * per_min,
            "one_poll_per_build_per_interval_per_min": sc.n * 60_000 / sc.poll_ms,
            "host_cpu_busy_pct": busy_pct(a.host, b.host),
        }
    )
    if a.kube_requests is not None and b.kube_requests is not None:
        metrics["kube_req_per_min"] = (b.kube_requests - a.kube_requests) * per_min
    if a.apiserver_cpu is not None and b.apiserver_cpu is not None:
        metrics["apiserver_cpu_pct"] = (b.apiserver_cpu - a.apiserver_cpu) / span * 100
    if a.simulator_cpu is not None and b.simulator_cpu is not None:
        metrics["simulator_cpu_pct"] = (b.simulator_cpu - a.simulator_cpu) / span * 100
    return b


def busy_pct(a: tuple[int, int], b: tuple[int, int]) -> float:
    return 100 * (b[0] - a[0]) / max(1, b[1] - a[1])
