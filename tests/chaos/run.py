"""Running a chaos plan: the real operator (a child process, killed and restarted) against the
emulated Kubernetes API and the Expo simulator, both injecting faults; then the invariants.

The run owns everything it starts (threads, the child process, an artifact host) and stops it all.
Its own writes (creating, cancelling, deleting, annotating resources) go straight to the emulated
cluster's state, past the injected faults: a user's kubectl would simply retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from publishing_operator.api import RETRY_ANNOTATION
from publishing_testkit.expo_simulator.server import SimulatorThread
from publishing_testkit.expo_simulator.state import CallRecord, FaultsRequest, SimulatorConfig
from publishing_testkit.kube_emulator import ApiFault, EmulatorThread, emulator_in_thread, load_manifests
from publishing_testkit.kube_emulator.errors import ApiError
from publishing_testkit.kube_emulator.resources import ResourceType
from publishing_testkit.kube_emulator.store import ClusterState
from publishing_testkit.sandbox.artifacts import serve_artifacts
from tests.chaos import invariants as inv
from tests.chaos.plan import Action, ChaosConfig, Plan, PlannedResource, make_plan
from tests.fixtures.kube import CRDS_DIR, EXAMPLES_DIR
from tests.fixtures.operator import EXAMPLE_TOKEN, FAST_OPERATOR, OperatorProcess

T = TypeVar("T")
GROUP, VERSION, PLURAL = "publishing.dev", "v1alpha1", "publishingbuilds"
RECEIPT_SECONDS = 20.0  # the simulator's receipt latency outside slow-receipt windows (0.2 s scaled)
ARMED_FOR = 20.0  # a kill armed for a create or stamp that has not come by then happens anyway


@dataclass
class Report:
    config: ChaosConfig
    plan: Plan
    counts: Counter[str] = field(default_factory=Counter)
    expo_faults: Counter[str] = field(default_factory=Counter)
    expo_fault_operations: Counter[str] = field(default_factory=Counter)
    kube_faults: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)
    checks: inv.Checks = field(default_factory=inv.Checks)
    seconds: dict[str, float] = field(default_factory=dict)
    sigterm_codes: list[int] = field(default_factory=list)
    logs_dir: Path | None = None

    @property
    def violations(self) -> list[inv.Violation]:
        return self.checks.violations

    def by_invariant(self) -> dict[str, list[inv.Violation]]:
        grouped: dict[str, list[inv.Violation]] = {}
        for violation in self.violations:
            grouped.setdefault(violation.invariant, []).append(violation)
        return grouped

    def summary(self) -> str:
        c = self.counts
        lines = [
            f"chaos seed {self.config.seed}: {self.config.resources} resources over "
            f"{self.config.duration:g}s, settled in {self.seconds.get('settle', 0):.1f}s, "
            f"{self.seconds.get('total', 0):.1f}s in all",
            f"  operator: {c['sigkill']} SIGKILLs ({c['sigkill_on_call']} as a create/stamp reached Expo), "
            f"{c['sigterm']} SIGTERMs (exit codes {sorted(set(self.sigterm_codes))}), "
            f"{c['operator_starts']} starts",
            f"  user: {c['created']} created, {c['cancel']} cancels, {c['delete']} deletes, "
            f"{c['retry']} manual retries ({c['retry_effective']} on a finished resource)",
            "  Expo faults injected: " + _counts(self.expo_faults),
            "  Kubernetes API faults injected: " + _counts(self.kube_faults),
            f"  API restarts: {c['api_outages']} outage(s) of {self.config.outage_seconds:g}s (emulated); "
            f"{c['api_restarts']} real control-plane restarts",
            f"  EAS: {c['eas_builds']} builds, {c['eas_submissions']} submissions, {c['expo_calls']} calls",
            "  final phases: " + _counts(self.phases),
            f"  invariant checks: {sum(self.checks.made.values())} (" + _counts(self.checks.made) + ")",
            f"  violations: {len(self.violations)}"
            + (
                ""
                if not self.violations
                else " (" + _counts(Counter(v.invariant for v in self.violations)) + ")"
            ),
        ]
        for violation in self.violations[:20]:
            lines.append(f"    - {violation}")
        if self.logs_dir is not None:
            lines.append(f"  logs: {self.logs_dir}")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"


def run_chaos(config: ChaosConfig, workdir: Path) -> Report:
    """Run the plan drawn from `config.seed`; everything it starts is stopped before it returns."""
    plan = make_plan(config)
    return asyncio.run(_Run(plan, workdir).run())


# ---- the operator, supervised ---------------------------------------------------------------------


class Supervisor:
    """Starts the operator, kills or stops it when told, restarts it after the planned pause."""

    def __init__(self, env: dict[str, str], kubeconfig: Path, logs: Path, report: Report) -> None:
        self._env = env
        self._kubeconfig = kubeconfig
        self._logs = logs
        self._report = report
        self._lock = threading.Lock()
        self.process: OperatorProcess | None = None
        self.started: list[OperatorProcess] = []
        self._expected_exit = False
        self._restart_at: float | None = None
        self.metrics_port = 0
        self.unexpected_exits: list[int] = []
        self.deferred: list[float] = []  # planned kills that found the operator down: done once it is up
        self._started_at = 0.0

    def start(self) -> None:
        with self._lock:
            self.metrics_port = free_port()
            env = {**self._env, "PUBLISHING_METRICS_PORT": str(self.metrics_port)}
            command = [
                sys.executable,
                "-m",
                "publishing_operator",
                "run",
                "--kubeconfig",
                str(self._kubeconfig),
            ]
            log = self._logs / f"operator-{len(self.started):02d}.log"
            self.process = OperatorProcess(command, env, log).start()
            self.started.append(self.process)
            self._expected_exit = False
            self._restart_at = None
            self._started_at = time.monotonic()
            self._report.counts["operator_starts"] += 1

    def kill(self, restart_after: float, *, counter: str = "sigkill") -> bool:
        """SIGKILL now (from any thread); restarted `restart_after` seconds later by `tick`."""
        with self._lock:
            process = self.process
            if process is None or not process.alive or self._expected_exit:
                return False
            self._expected_exit = True
            process.signal(signal.SIGKILL)
            self._restart_at = time.monotonic() + restart_after
            self._report.counts["sigkill"] += 1
            if counter != "sigkill":
                self._report.counts[counter] += 1
            return True

    async def terminate(self, restart_after: float, grace: float) -> None:
        """SIGTERM, wait for the exit (its code is recorded: 0 expected), restart later."""
        with self._lock:
            process = self.process
            if process is None or not process.alive or self._expected_exit:
                return
            self._expected_exit = True
            process.signal(signal.SIGTERM)
            self._report.counts["sigterm"] += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + 20
        while process.alive and loop.time() < deadline:  # noqa: ASYNC110 - a child process, not an event
            await asyncio.sleep(0.05)
        if process.alive:
            process.kill()
            self._report.sigterm_codes.append(-9)
        else:
            assert process.process is not None
            self._report.sigterm_codes.append(int(process.process.returncode))
        with self._lock:
            self._restart_at = time.monotonic() + restart_after

    def kill_when_up(self, restart_after: float) -> None:
        """A planned kill: now, or as soon as the operator has been up for a moment again."""
        if not self._up_for(1.0) or not self.kill(restart_after):
            self.deferred.append(restart_after)

    def _up_for(self, seconds: float) -> bool:
        process = self.process
        return (
            process is not None
            and process.alive
            and not self._expected_exit
            and time.monotonic() - self._started_at >= seconds
        )

    def tick(self) -> None:
        """Restart when due; notice an exit nobody asked for; carry out deferred kills."""
        process = self.process
        if process is None:
            return
        if self.deferred and self._up_for(1.0) and self.kill(self.deferred[0]):
            self.deferred.pop(0)
            return
        if not process.alive and not self._expected_exit:
            assert process.process is not None
            self.unexpected_exits.append(int(process.process.returncode))
            self._expected_exit = True
            self._restart_at = time.monotonic()
        if not process.alive and self._restart_at is not None and time.monotonic() >= self._restart_at:
            self.start()

    def ensure_running(self) -> None:
        process = self.process
        if process is None or not process.alive:
            if process is not None and process.alive is False and self._restart_at is None:
                self._expected_exit = True
            self._restart_at = time.monotonic()
            self.tick()

    def stop(self) -> None:
        with self._lock:
            self._expected_exit = True
            process = self.process
        if process is not None and process.alive:
            process.signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except Exception:
                process.kill()

    def logs(self) -> dict[str, str]:
        return {process.log_path.name: process.logs() for process in self.started}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- one run --------------------------------------------------------------------------------------


class _Run:
    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.config = plan.config
        self.workdir = workdir
        self.report = Report(config=plan.config, plan=plan, logs_dir=workdir)
        self.writes: list[inv.Written] = []
        self.events: list[dict[str, Any]] = []
        self.deleted_by_user: set[tuple[str, str]] = set()
        self.metrics_texts: list[str] = []
        self.uids: dict[tuple[str, str], str] = {}
        # kill_on_call: (operation, delay, restart_after, armed at); unfired after ARMED_FOR: a plain kill
        self._armed: list[tuple[str, float, float, float]] = []
        self._armed_lock = threading.Lock()
        self._seen = 0  # the last resourceVersion of the API server's event log recorded

    async def run(self) -> Report:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (
            emulator_in_thread(bookmark_interval=1.0, event_log_size=2_000_000) as kube,
            SimulatorThread(
                tokens={EXAMPLE_TOKEN},
                config=SimulatorConfig(time_scale=self.config.time_scale, receipt_seconds=RECEIPT_SECONDS),
            ) as expo,
        ):
            async with serve_artifacts() as artifacts:
                self.kube, self.expo, self.artifacts = kube, expo, artifacts
                await self._setup()
                recorder = asyncio.create_task(self._record())
                scraper = asyncio.create_task(self._scrape_metrics())
                try:
                    timeline_started = time.monotonic()
                    await self._timeline()
                    self.report.seconds["timeline"] = time.monotonic() - timeline_started
                    await self._calm()
                    settle_started = time.monotonic()
                    await self._settle()
                    self.report.seconds["settle"] = time.monotonic() - settle_started
                finally:
                    self.supervisor.stop()
                    scraper.cancel()
                    recorder.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await recorder
                        await scraper
                await self._collect_last_writes()
                self._check()
                self._dump()
        self.report.seconds["total"] = time.monotonic() - started
        return self.report

    # -- set-up -------------------------------------------------------------------------------------

    async def _setup(self) -> None:
        kubeconfig = self.kube.handle.write_kubeconfig(self.workdir / "kubeconfig")
        await self._on_kube(lambda: self.kube.handle.apply(load_manifests(CRDS_DIR)))
        secrets = [
            doc for doc in load_manifests(EXAMPLES_DIR / "secrets.yaml") if doc.get("kind") == "Secret"
        ]
        self.secrets = secrets
        for namespace in self.config.namespaces:
            manifests: list[dict[str, Any]] = [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            ]
            for secret in secrets:
                placed = copy.deepcopy(secret)
                placed["metadata"]["namespace"] = namespace
                manifests.append(placed)
            await self._on_kube(lambda m=manifests: self.kube.handle.apply(m))  # type: ignore[misc]
        # Kill the operator as a create or stamp reaches Expo (the simulator's thread).
        state = self.expo.state
        original = state.record_call

        def record_call(record: CallRecord) -> None:
            original(record)
            self._maybe_kill_on(record)

        state.record_call = record_call  # type: ignore[method-assign]
        settings = {
            "PUBLISHING_EXPO_API_URL": self.expo.graphql_url,
            "KUBECONFIG": str(kubeconfig),
            # A local, time-scaled simulator: the floors that protect api.expo.dev do not apply.
            "PUBLISHING_EXPO_SIMULATOR": FAST_OPERATOR["PUBLISHING_EXPO_SIMULATOR"],
            "PUBLISHING_POLL_BUILD": "500ms",
            "PUBLISHING_POLL_SUBMISSION": "300ms",
            "PUBLISHING_START_RATE": "1000/60s",
            "PUBLISHING_HEALTH_PORT": "0",
            "PUBLISHING_LOG_FORMAT": "json",
            "PUBLISHING_HISTORY_SUCCEEDED": "6",
            "PUBLISHING_HISTORY_FAILED": "6",
            "PUBLISHING_SHUTDOWN_GRACE": "3s",
            "PUBLISHING_CIRCUIT_OPEN_FOR": "2s",
            # The integration tests' claim windows (tests/fixtures/operator.py): one clock, short
            # Expo timeouts, a lost GitHub create answer may take 20 s to appear.
            "PUBLISHING_EXPO_TIMEOUT": FAST_OPERATOR["PUBLISHING_EXPO_TIMEOUT"],
            "PUBLISHING_CLOCK_SKEW": FAST_OPERATOR["PUBLISHING_CLOCK_SKEW"],
            "PUBLISHING_START_CONFIRM_TIMEOUT": FAST_OPERATOR["PUBLISHING_START_CONFIRM_TIMEOUT"],
            # One operator, killed and restarted: a SIGKILLed leader's Lease would hold the next for 15 s.
            "PUBLISHING_LEADER_ELECTION": "false",
            "PUBLISHING_ARCHIVE_ALLOWED_HOSTS": "127.0.0.1",  # the run's artifact host serves tarballs
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHING_")}
        self.supervisor = Supervisor({**env, **settings}, kubeconfig, self.workdir, self.report)
        self.supervisor.start()

    async def _on_kube(self, factory: Callable[[], Awaitable[T]]) -> T:
        thread: EmulatorThread = self.kube
        return await asyncio.to_thread(thread.call, factory)

    def _state_call(self, action: Callable[[ClusterState, ResourceType], T]) -> Awaitable[T]:
        async def run() -> T:
            state = self.kube.handle.state
            return action(state, state.find(GROUP, VERSION, PLURAL))

        return self._on_kube(run)

    # -- the record of every write ------------------------------------------------------------------

    async def _record(self) -> None:
        while True:
            await self._on_kube(self._drain)
            await asyncio.sleep(0.2)

    async def _drain(self) -> None:
        """New entries of the API server's event log (on the emulator's loop)."""
        state = self.kube.handle.state
        events = state.events_since(self._seen)
        if events is None:
            raise RuntimeError("the emulator's event log overflowed: raise event_log_size")
        for event in events:
            if (event.group, event.plural) == (GROUP, PLURAL):
                self.writes.append(inv.Written(event.type, event.obj))
            elif (event.group, event.plural) == ("", "events") and event.type != "DELETED":
                self.events.append(dict(event.obj))
        if events:
            self._seen = events[-1].rv

    async def _collect_last_writes(self) -> None:
        await self._on_kube(self._drain)

    async def _scrape_metrics(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                await asyncio.sleep(2.0)
                port = self.supervisor.metrics_port
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"http://127.0.0.1:{port}/metrics")
                    if response.status_code == 200:
                        self.metrics_texts.append(response.text)
                        self.report.counts["metrics_scrapes"] += 1

    # -- the timeline -------------------------------------------------------------------------------

    async def _timeline(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        items: list[tuple[float, int, Action | PlannedResource]] = [
            (r.at, 0, r) for r in self.plan.resources
        ] + [(a.at, 1, a) for a in self.plan.actions]
        items.sort(key=lambda item: (item[0], item[1]))
        for at, _, item in items:
            while loop.time() - start < at:
                self._tick()
                await asyncio.sleep(min(0.05, max(0.0, at - (loop.time() - start))))
            if isinstance(item, PlannedResource):
                await self._create(item)
            else:
                await self._act(item)
        while loop.time() - start < self.config.duration:
            self._tick()
            await asyncio.sleep(0.05)
        with self._armed_lock:  # kills armed for a call that never came: they happen now, as planned
            leftover, self._armed = self._armed, []
        for _, _, restart_after, _ in leftover:
            self.supervisor.kill_when_up(restart_after)
        while self.supervisor.deferred:
            self._tick()
            await asyncio.sleep(0.05)

    def _tick(self) -> None:
        self.supervisor.tick()
        with self._armed_lock:
            expired = [armed for armed in self._armed if time.monotonic() - armed[3] > ARMED_FOR]
            for armed in expired:
                self._armed.remove(armed)
        for _, _, restart_after, _ in expired:
            self.supervisor.kill_when_up(restart_after)

    async def _create(self, resource: PlannedResource) -> None:
        manifest = self.artifacts.localize(resource.manifest)
        created = await self._state_call(
            lambda state, rtype: state.create(rtype, resource.namespace, manifest)
        )
        self.uids[resource.key] = created["metadata"]["uid"]
        self.report.counts["created"] += 1

    async def _act(self, action: Action) -> None:
        p = action.params
        kind = action.kind
        if kind == "kill":
            self.supervisor.kill_when_up(p["restart_after"])
        elif kind == "kill_on_call":
            with self._armed_lock:
                self._armed.append((p["operation"], p["delay"], p["restart_after"], time.monotonic()))
        elif kind == "sigterm":
            grace = 3.0
            await self.supervisor.terminate(p["restart_after"], grace)
        elif kind == "expo_fault":
            call = {k: v for k, v in p.items() if k != "kind"}
            self.expo.state.add_faults(FaultsRequest.model_validate({"calls": [call]}))
        elif kind == "expo_outcome":
            outcome = {k: v for k, v in p.items() if k != "kind"}
            self.expo.state.add_faults(FaultsRequest.model_validate({"outcomes": [outcome]}))
            self.report.expo_faults[p["kind"]] += p["count"]
        elif kind == "slow_receipts":
            self.expo.state.configure({"receipt_seconds": float(p["receipt_seconds"])})
            if p["receipt_seconds"] > RECEIPT_SECONDS:
                self.report.expo_faults["slow_receipts"] += 1
        elif kind == "kube_fault":
            await self._kube_fault(p)
        elif kind in ("cancel", "delete"):
            await self._cancel_or_delete(kind, tuple(p["resource"]))  # type: ignore[arg-type]
        elif kind == "retry":
            await self._manual_retry(p["pick"])

    async def _kube_fault(self, params: dict[str, Any]) -> None:
        then_cut = params.get("then_cut", False)
        fault = ApiFault.model_validate({k: v for k, v in params.items() if k != "then_cut"})

        async def add() -> None:
            self.kube.handle.add_fault(fault)
            if then_cut:  # a 410 is met by a watch that resumes: make one resume
                self.kube.handle.add_fault(ApiFault(kind="cut_watches"))

        await self._on_kube(add)
        if fault.kind == "outage":
            self.report.counts["api_outages"] += 1

    async def _cancel_or_delete(self, kind: str, key: tuple[str, str]) -> None:
        namespace, name = key

        def act(state: ClusterState, rtype: ResourceType) -> bool:
            try:
                if kind == "cancel":
                    state.patch(
                        rtype, namespace, name, "application/merge-patch+json", {"spec": {"cancel": True}}
                    )
                else:
                    state.delete(rtype, namespace, name)
            except ApiError:
                return False  # already gone (TTL, retention) or finished: nothing to do
            return True

        if await self._state_call(act):
            self.report.counts[kind] += 1
            if kind == "delete":
                self.deleted_by_user.add(key)

    async def _manual_retry(self, pick: int) -> None:
        """Annotate the pick-th finished Failed or Cancelled resource (or, if none, any resource)."""

        def act(state: ClusterState, rtype: ResourceType) -> tuple[str, bool] | None:
            items = [o for o in state.select(rtype, None) if not o["metadata"].get("deletionTimestamp")]
            if not items:
                return None
            finished = [o for o in items if (o.get("status") or {}).get("phase") in ("Failed", "Cancelled")]
            chosen = (finished or items)[pick % len(finished or items)]
            meta = chosen["metadata"]
            patch = {"metadata": {"annotations": {RETRY_ANNOTATION: f"chaos-{pick}-{time.monotonic():.3f}"}}}
            try:
                state.patch(rtype, meta["namespace"], meta["name"], "application/merge-patch+json", patch)
            except ApiError:
                return None
            return meta["name"], bool(finished)

        done = await self._state_call(act)
        if done is not None:
            self.report.counts["retry"] += 1
            self.report.counts["retry_effective"] += int(done[1])

    def _maybe_kill_on(self, record: CallRecord) -> None:
        names = {record.operation_name or "", *record.fields}
        with self._armed_lock:
            armed = next((a for a in self._armed if a[0] in names), None)
            if armed is None:
                return
            self._armed.remove(armed)
        _, delay, restart_after, _ = armed
        if delay:
            time.sleep(delay)  # the simulator's thread: lets the call be applied, or not yet
        self.supervisor.kill(restart_after, counter="sigkill_on_call")

    # -- the end --------------------------------------------------------------------------------------

    async def _calm(self) -> None:
        """Every fault off, the operator running: from here on everything must finish."""
        state = self.expo.state
        with state.lock:
            self._count_expo_faults()
            state.call_faults.clear()
            state.outcome_faults.clear()
        state.configure({"receipt_seconds": RECEIPT_SECONDS})
        with self._armed_lock:
            self._armed.clear()

        async def clear() -> None:
            plan = self.kube.handle.faults
            self.report.kube_faults.update(plan.injected)
            plan.pending.clear()
            plan.outage_until = 0.0

        await self._on_kube(clear)
        self.supervisor.ensure_running()

    def _count_expo_faults(self) -> None:
        """The call faults Expo's simulator actually applied, by kind and by kind and operation."""
        for call in self.expo.state.calls:
            if not call.fault:
                continue
            fault = json.loads(call.fault)
            if fault.get("drop"):
                kind = (
                    f"lost answer ({fault['drop']} applied)"
                    if fault["drop"] == "after"
                    else "dropped request"
                )
            elif fault.get("error_code"):
                kind = f"GraphQL {fault['error_code']}"
            elif fault.get("http_status"):
                kind = f"HTTP {fault['http_status']}"
            else:
                kind = "latency"
            self.report.expo_faults[kind] += 1
            self.report.expo_fault_operations[f"{kind} on {call.operation_name}"] += 1

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.settle_timeout
        while loop.time() < deadline:
            self.supervisor.tick()
            if await self._state_call(self._settled):
                return
            await asyncio.sleep(0.25)
        self.report.counts["settle_timeout"] += 1

    def _settled(self, state: ClusterState, rtype: ResourceType) -> bool:
        for obj in state.select(rtype, None):
            phase = (obj.get("status") or {}).get("phase")
            if phase not in inv.FINISHED or obj["metadata"].get("deletionTimestamp"):
                return False
        return True

    # -- what is kept for a post-mortem ----------------------------------------------------------------

    def _dump(self) -> None:
        """The plan, every committed status, Expo's builds, submissions and calls, the violations."""
        out = self.workdir
        (out / "plan.txt").write_text(f"{self.config}\n\n{self.plan.describe()}\n")
        with (out / "writes.jsonl").open("w") as file:
            for written in self.writes:
                meta = written.obj.get("metadata", {})
                record = {
                    "type": written.type,
                    "resource": written.name,
                    "uid": written.uid,
                    "rv": meta.get("resourceVersion"),
                    "status": written.status,
                }
                file.write(json.dumps(record, default=str) + "\n")
        state = self.expo.state
        (out / "builds.json").write_text(json.dumps(state.describe_builds(), indent=1, default=str))
        (out / "submissions.json").write_text(json.dumps(state.describe_submissions(), indent=1, default=str))
        calls = [
            {
                "time": state.wall(c.time),
                "operation": c.operation_name,
                "http": c.http_status,
                "fault": c.fault,
            }
            for c in state.calls
        ]
        (out / "expo-calls.json").write_text(json.dumps(calls, indent=1))
        violations = [
            {"invariant": v.invariant, "what": v.what, "resource": v.resource, **v.detail}
            for v in self.report.violations
        ]
        (out / "violations.json").write_text(json.dumps(violations, indent=1, default=str))
        (out / "summary.txt").write_text(self.report.summary() + "\n")

    # -- the invariants -------------------------------------------------------------------------------

    def _check(self) -> None:
        final: dict[tuple[str, str], dict[str, Any]] = {}
        state = self.kube.handle.state
        for obj in state.select(state.find(GROUP, VERSION, PLURAL), None):
            final[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        builds = self.expo.state.describe_builds()
        submissions = self.expo.state.describe_submissions()
        self.report.counts["expo_calls"] = len(self.expo.state.calls)
        self.report.counts["eas_builds"] = len(builds)
        self.report.counts["eas_submissions"] = len(submissions)
        for obj in final.values():
            self.report.phases[str((obj.get("status") or {}).get("phase"))] += 1
        self.report.phases["(deleted)"] = len(self.plan.resources) - len(final)

        checks = self.report.checks
        planned = [r.key for r in self.plan.resources]
        checks.extend(inv.check_finished(planned, final, self.writes, self.deleted_by_user))
        checks.extend(inv.check_builds(builds, self.writes))
        checks.extend(inv.check_submissions(submissions, self.writes))
        built_keys = {str(b["message"]) for b in builds if b.get("message")}
        checks.extend(inv.check_transitions(self.writes, built_keys))
        needles = inv.secret_needles(self.secrets)
        logs = self.supervisor.logs()
        checks.extend(inv.check_no_secrets(needles, "the operator log", logs.values()))
        checks.extend(inv.check_no_secrets(needles, "an Event", [_event_text(e) for e in self.events]))
        checks.extend(inv.check_no_secrets(needles, "a status", [repr(w.status) for w in self.writes]))
        checks.extend(inv.check_no_secrets(needles, "/metrics", self.metrics_texts))
        checks.extend(inv.check_no_traceback(logs))
        for code in self.supervisor.unexpected_exits:
            checks.check(
                "operator-exit", False, inv.Violation("operator-exit", f"the operator exited with {code}")
            )
        for code in self.report.sigterm_codes:
            checks.check(
                "operator-exit",
                code == 0,
                inv.Violation("operator-exit", f"SIGTERM: exit code {code}, not 0"),
            )


def _event_text(event: dict[str, Any]) -> str:
    return " ".join(str(event.get(key, "")) for key in ("reason", "message", "note", "involvedObject"))
