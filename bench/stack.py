"""The benchmark stack: the integration tests' `Stack` (tests/fixtures) plus what a benchmark reads.

- `bench_stack()` starts the emulated Kubernetes API and the Expo simulator in threads of this
  process, applies the CRDs and the example Secrets, and yields a `BenchStack`; the operator is the
  real `python -m publishing_operator run` child process (`BenchStack.start_operator`).
- `WriteRecorder` timestamps every write the API server commits (its watch event log), as it
  happens, on the emulator's own event loop: write counts and latencies come from there.
- The kmock request log gives the operator's Kubernetes requests (reads too); the simulator's call
  log gives every Expo GraphQL call.

Timing is Expo-realistic and scaled: `SimulatorConfig`'s defaults (queue 30 s, build 600 s,
submission 70 s ...) and the operator's default poll intervals (POLL_BUILD 30 s, POLL_SUBMISSION
15 s) are multiplied by the same `time_scale`, so the operator polls as often per build as it would
against Expo.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.kube import CRDS_DIR, EXAMPLES_DIR, Kube
from tests.fixtures.operator import EXAMPLE_TOKEN, OperatorProcess, Stack, load_yaml

from publishing_operator.api import FINALIZER, RESULT_LABEL
from publishing_operator.durations import format_duration
from publishing_operator.settings import Settings
from publishing_testkit.expo_simulator.server import SimulatorThread
from publishing_testkit.expo_simulator.state import SimulatorConfig
from publishing_testkit.kube_emulator import EmulatorThread, emulator_in_thread, load_manifests
from publishing_testkit.kube_emulator.emulator import parse_api_path
from publishing_testkit.kube_emulator.store import WatchEvent

GROUP, PLURAL = "publishing.dev", "publishingbuilds"
FINISHED = frozenset({"Succeeded", "Failed", "Cancelled"})
OPERATOR_AGENTS = ("publishing-operator", "kopf")  # User-Agent prefixes of the operator's requests
DEFAULT_TIME_SCALE = 0.005  # a 600 s EAS build takes 3 s


def operator_settings(time_scale: float, **overrides: str) -> dict[str, str]:
    """The operator's default poll intervals scaled like the simulator, plus `overrides`."""
    defaults = Settings()
    scaled = {
        "expo_simulator": "true",  # scaled intervals are below the production floors
        "poll_build": format_duration(defaults.poll_build * time_scale),
        "poll_submission": format_duration(defaults.poll_submission * time_scale),
        "log_format": "plain",
    }
    return {**scaled, **overrides}


@dataclass(frozen=True)
class Recorded:
    at: float  # time.time() when the API server committed the write (within a loop iteration)
    event: WatchEvent


class WriteRecorder:
    """Every committed write (ADDED / MODIFIED / DELETED), timestamped, from the watch event log."""

    def __init__(self, thread: EmulatorThread) -> None:
        self._thread = thread
        self.writes: list[Recorded] = []
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._thread.call(self._start)

    def stop(self) -> None:
        self._thread.call(self._finish)

    async def _start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(self._thread.handle.state.rv))

    async def _finish(self) -> None:
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await self._task

    async def _run(self, seen: int) -> None:
        assert self._stop is not None
        state = self._thread.handle.state
        while not self._stop.is_set():
            events = state.events_since(seen)
            if events is None:
                raise RuntimeError("the emulator's event log overflowed: raise event_log_size")
            if events:
                now = time.time()
                self.writes.extend(Recorded(now, event) for event in events)
                seen = events[-1].rv
            else:
                await state.wait_for_change(0.2)

    def snapshot(self) -> list[Recorded]:
        return list(self.writes)


# ---- one resource's writes ---------------------------------------------------------------------


def _meta(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("metadata") or {})


def _phase(obj: Mapping[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


def write_kind(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """What a MODIFIED event changed: status, finalizers, labels, annotations, spec or nothing."""
    if (old or {}).get("status") != new.get("status"):
        return "status"
    before, after = _meta(old), _meta(new)
    for key, kind in (("finalizers", "finalizer"), ("labels", "label"), ("annotations", "annotation")):
        if before.get(key) != after.get(key):
            return kind
    if (old or {}).get("spec") != new.get("spec"):
        return "spec"
    return "no-op"


def changed_status_keys(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Dotted status keys (two levels deep) whose value differs: what a status write was for."""
    before, after = dict((old or {}).get("status") or {}), dict(new.get("status") or {})
    keys: list[str] = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            keys += [f"{key}.{k}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        elif key == "conditions" and isinstance(a, list) and isinstance(b, list):
            keys += [f"conditions.{c}" for c in _changed_conditions(a, b)]
        else:
            keys.append(key)
    return keys


def _changed_conditions(a: list[Any], b: list[Any]) -> list[str]:
    def by_type(items: list[Any]) -> dict[str, Any]:
        return {str(c.get("type")): c for c in items if isinstance(c, dict)}

    old, new = by_type(a), by_type(b)
    return sorted(t for t in old.keys() | new.keys() if old.get(t) != new.get(t))


@dataclass
class ResourceWrites:
    """What the API server committed for one PublishingBuild, from its creation on."""

    name: str
    uid: str
    created_at: float
    writes: Counter[str] = field(default_factory=Counter)  # write_kind -> count (MODIFIED only)
    events_posted: int = 0  # core/v1 Events created or updated for this object
    event_reasons: Counter[str] = field(default_factory=Counter)
    status_keys: Counter[str] = field(default_factory=Counter)  # changed status keys, over all writes
    status_by_phase: Counter[str] = field(default_factory=Counter)  # status writes by the phase they set
    first_write_at: float | None = None
    phases: list[tuple[float, str]] = field(default_factory=list)  # (time, phase) at each change
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (time, what) per write and Event
    last_write_at: float = 0.0
    start_time: str | None = None  # status.startTime
    final: dict[str, Any] = field(default_factory=dict)

    @property
    def object_writes(self) -> int:
        return sum(self.writes.values())

    @property
    def total_writes(self) -> int:
        return self.object_writes + self.events_posted

    def reached(self, phase: str) -> float | None:
        return next((at for at, p in self.phases if p == phase), None)

    @property
    def settled(self) -> bool:
        return is_settled(self.final)


def is_settled(obj: Mapping[str, Any] | None) -> bool:
    """Finished, result label set, our finalizer gone: the operator has nothing left to do."""
    meta = _meta(obj)
    return (
        _phase(obj) in FINISHED
        and RESULT_LABEL in (meta.get("labels") or {})
        and FINALIZER not in (meta.get("finalizers") or [])
    )


def resource_writes(recorded: Iterable[Recorded]) -> dict[str, ResourceWrites]:
    """Per PublishingBuild (by uid): its writes and Events, in commit order."""
    found: dict[str, ResourceWrites] = {}
    for item in recorded:
        event = item.event
        if (event.group, event.plural) == (GROUP, PLURAL):
            meta = _meta(event.obj)
            uid = str(meta.get("uid"))
            if event.type == "ADDED":
                found[uid] = ResourceWrites(name=str(meta.get("name")), uid=uid, created_at=item.at)
                found[uid].final = event.obj
                continue
            entry = found.get(uid)
            if entry is None or event.type != "MODIFIED":
                continue
            kind = write_kind(event.old, event.obj)
            entry.writes[kind] += 1
            keys = changed_status_keys(event.old, event.obj) if kind == "status" else []
            entry.status_keys.update(keys)
            if kind == "status":
                entry.status_by_phase[str(_phase(event.obj))] += 1
            entry.timeline.append((item.at, f"{kind} {' '.join(keys)}".rstrip()))
            if _phase(event.obj) != _phase(event.old):
                entry.phases.append((item.at, str(_phase(event.obj))))
            entry.first_write_at = entry.first_write_at or item.at
            entry.last_write_at = item.at
            entry.start_time = (event.obj.get("status") or {}).get("startTime")
            entry.final = event.obj
        elif (event.group, event.plural) == ("", "events") and event.type in ("ADDED", "MODIFIED"):
            involved = event.obj.get("involvedObject") or {}
            entry = found.get(str(involved.get("uid")))
            if entry is not None:
                entry.events_posted += 1
                entry.event_reasons[str(event.obj.get("reason"))] += 1
                entry.timeline.append((item.at, f"Event {event.obj.get('reason')}"))
                entry.last_write_at = max(entry.last_write_at, item.at)
    return found


# ---- the stack -----------------------------------------------------------------------------------


@dataclass
class BenchStack:
    stack: Stack
    recorder: WriteRecorder
    time_scale: float

    @property
    def thread(self) -> EmulatorThread:
        return self.stack.kube.thread

    # -- the operator --------------------------------------------------------------------------

    def start_operator(self, **settings: str) -> OperatorProcess:
        """The real operator, started and watching PublishingBuilds (its first WATCH request seen)."""
        process = self.stack.operator(**operator_settings(self.time_scale, **settings))
        deadline = time.monotonic() + 60.0
        while not any(r.startswith("WATCH publishingbuilds") for r in self.operator_requests()):
            if not process.alive or time.monotonic() > deadline:
                raise RuntimeError("the operator did not start watching:\n" + process.logs()[-4000:])
            time.sleep(0.05)
        return process

    def stop_operator(self, process: OperatorProcess) -> None:
        """SIGTERM (graceful shutdown), SIGKILL if it lingers."""
        if process.alive:
            process.signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    def log_problems(self) -> Counter[str]:
        return log_problems(self.stack.operator_logs())

    # -- Kubernetes --------------------------------------------------------------------------------

    def create(self, manifests: list[dict[str, Any]]) -> None:
        """POST every manifest concurrently ("at once"), through the HTTP API."""

        async def post_all() -> None:
            handle = self.thread.handle
            async with handle.client_session(headers={"Content-Type": "application/json"}) as session:

                async def post(body: dict[str, Any]) -> None:
                    namespace = body["metadata"].get("namespace", "default")
                    path = f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/{PLURAL}"
                    async with session.post(path, data=json.dumps(body)) as response:
                        if response.status >= 300:
                            raise RuntimeError(f"create failed: {response.status} {await response.text()}")

                await asyncio.gather(*(post(body) for body in manifests))

        self.thread.call(post_all, timeout=120)

    def operator_requests(self) -> list[str]:
        """Every Kubernetes request the operator made, as "VERB resource[/subresource]"."""
        return emulator_operator_requests(self.thread)

    def wait_settled(
        self, names: set[str], *, timeout: float, quiet: float = 1.0
    ) -> dict[str, ResourceWrites]:
        """Until every named resource is settled and no write touched them for `quiet` seconds.

        Incremental and cheap (this thread shares the GIL with the emulator and the simulator);
        the full analysis runs once, at the end.
        """
        deadline = time.monotonic() + timeout
        latest: dict[str, dict[str, Any]] = {}
        last_write, seen = 0.0, 0
        while True:
            recorded = self.recorder.writes[seen:]
            seen += len(recorded)
            for item in recorded:
                event = item.event
                if (event.group, event.plural) == (GROUP, PLURAL):
                    name = str(_meta(event.obj).get("name"))
                elif (event.group, event.plural) == ("", "events"):
                    name = str((event.obj.get("involvedObject") or {}).get("name"))
                else:
                    continue
                if name in names:
                    last_write = item.at
                    if event.plural == PLURAL:
                        latest[name] = event.obj
            done = len(latest) == len(names) and all(is_settled(obj) for obj in latest.values())
            if done and time.time() - last_write >= quiet:
                return {n: w for n, w in self.resource_writes().items() if n in names}
            if time.monotonic() > deadline:
                unsettled = sorted(n for n in names if not is_settled(latest.get(n)))
                raise TimeoutError(
                    f"{len(unsettled)} resource(s) not settled in {timeout}s: {unsettled[:5]}\n"
                    + self.stack.operator_logs()[-4000:]
                )
            time.sleep(0.1)

    def resource_writes(self) -> dict[str, ResourceWrites]:
        """Every PublishingBuild's writes so far, by name (the latest object of that name)."""
        return {w.name: w for w in resource_writes(self.recorder.snapshot()).values()}

    # -- Expo --------------------------------------------------------------------------------------

    def expo_calls(self, since: int = 0) -> Counter[str]:
        """Expo GraphQL calls by operation (operationName, else the top-level field names)."""
        with self.stack.expo.state.lock:
            calls = list(self.stack.expo.state.calls[since:])
        return Counter(c.operation_name or ",".join(c.fields) or "?" for c in calls)

    def expo_call_count(self) -> int:
        with self.stack.expo.state.lock:
            return len(self.stack.expo.state.calls)


def emulator_operator_requests(thread: EmulatorThread) -> list[str]:
    """Every request the operator made to the emulator, as "VERB resource[/subresource]"."""

    async def read() -> list[str]:
        emulator = thread.handle.emulator
        state = emulator.state
        lines: list[str] = []
        for request in emulator:
            agent = request.headers.get("User-Agent", "")
            if not agent.startswith(OPERATOR_AGENTS):
                continue
            api = parse_api_path(request.url.path, state)
            if api is None or api.plural is None:
                lines.append(f"{getattr(request.method, 'value', request.method)} {request.url.path}")
                continue
            verb = str(getattr(request.method, "value", request.method)).upper()
            if verb == "GET":
                verb = "WATCH" if request.params.get("watch") in ("true", "1") else "GET"
                verb = verb if api.name or verb == "WATCH" else "LIST"
            target = api.plural + (f"/{api.subresource}" if api.subresource else "")
            lines.append(f"{verb} {target}")
        return lines

    return thread.call(read)


@contextlib.contextmanager
def bench_stack(*, time_scale: float = DEFAULT_TIME_SCALE, cel: bool = False) -> Iterator[BenchStack]:
    """A fresh emulated API (CRDs + example Secrets) and Expo simulator; the operator is not started.

    `cel=False` applies the CRDs without their `x-kubernetes-validations`: the emulator evaluates
    CEL in pure Python (cel-python, ~40 ms per PublishingBuild write, in this process), which would
    make the harness, not the operator, the bottleneck; a real API server takes microseconds. The
    structural schema is still enforced.
    """
    with (
        tempfile.TemporaryDirectory(prefix="publishing-bench-") as tmpdir,
        emulator_in_thread(bookmark_interval=10.0, event_log_size=1_000_000) as thread,
    ):
        tmp = Path(tmpdir)
        thread.handle.emulator.request_history = 1_000_000  # keep every request: we count them
        kubeconfig = thread.handle.write_kubeconfig(tmp / "kubeconfig")
        kube = Kube(thread=thread, kubeconfig=kubeconfig, cache_dir=tmp / "kube-cache")
        crds = load_manifests(CRDS_DIR)
        kube.apply(crds if cel else [without_cel_rules(crd) for crd in crds])
        kube.apply(load_yaml(EXAMPLES_DIR / "secrets.yaml"))
        config = SimulatorConfig(time_scale=time_scale)  # Expo-realistic durations, scaled
        with SimulatorThread(tokens={EXAMPLE_TOKEN}, config=config) as expo:
            recorder = WriteRecorder(thread)
            recorder.start()
            bench = BenchStack(Stack(kube=kube, expo=expo, tmp=tmp), recorder, time_scale)
            try:
                yield bench
            finally:
                bench.stack.stop_all()
                recorder.stop()


def without_cel_rules(node: Any) -> Any:
    """A copy of a manifest with every `x-kubernetes-validations` list removed."""
    if isinstance(node, dict):
        return {k: without_cel_rules(v) for k, v in node.items() if k != "x-kubernetes-validations"}
    if isinstance(node, list):
        return [without_cel_rules(item) for item in node]
    return node


# ---- process numbers -------------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int | None:
    """A `/proc/<pid>/status` size in KiB (VmHWM = peak RSS, VmRSS = current)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(name: str) -> float | None:
    """User + system CPU of the live thread of this process called `name` (/proc/self/task)."""
    for thread in threading.enumerate():
        if thread.name == name and thread.native_id is not None:
            try:
                stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            except OSError:
                return None
            fields = stat.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def log_problems(logs: str) -> Counter[str]:
    """The operator's WARNING and ERROR log lines, by logger and message shape (ids, numbers out)."""
    problems: Counter[str] = Counter()
    for line in logs.splitlines():
        parts = line.split(None, 4)  # date, time, level, logger, message
        if len(parts) == 5 and parts[2] in ("WARNING", "ERROR", "CRITICAL"):
            message = re.sub(r"\[[^\]]*\]$", "", parts[4])
            message = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|(?<=-)\d+|\d+\.\d+", "#", message).strip()
            problems[f"{parts[2]} {parts[3]}: {message[:300]}"] += 1
    return problems
