"""The Expo simulator in a process of its own, for the side-by-side runs.

The old design's harness runs its Expo stub as a process beside the worker and Redis. Ours ran the
simulator as a thread of the benchmark process, next to the emulated API server: one interpreter
lock for both, so in the burst the two queued behind each other (the benchmark process was busy
the whole drain) and the operator waited on that queue, not on its own work. Here the simulator
has its own interpreter, as the old design's stub has; the benchmark asks it what it saw, one JSON
line per question over the child's stdin and stdout (`python -m bench.expo_process`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from bench.stack import cpu_seconds
from publishing_testkit.expo_simulator.server import SimulatorThread
from publishing_testkit.expo_simulator.state import SimulatorConfig, SimulatorState

REPO_ROOT = Path(__file__).resolve().parent.parent


def _answer(state: SimulatorState, offset: float, command: str, argument: Any) -> Any:
    if command == "configure":
        state.configure(argument)
        return None
    with state.lock:
        if command == "build_requests":
            return {str(r.build_input.get("gitRef")): r.created + offset for r in state.receipts.values()}
        if command == "call_count":
            return len(state.calls)
        if command == "calls":
            return Counter(c.operation_name or ",".join(c.fields) or "?" for c in state.calls[argument:])
        if command == "builds_polled":
            return sum(c.selections for c in state.calls if c.operation_name in ("BuildById", "BuildsById"))
    raise ValueError(f"unknown command {command!r}")


def serve(tokens: set[str], config: SimulatorConfig, questions: IO[str], answers: IO[str]) -> None:
    """The child: the simulator in a thread; one JSON question per line in, one answer per line out."""
    with SimulatorThread(tokens=tokens, config=config) as sim:
        state = sim.state
        offset = time.time() - state.now()  # simulator instants are monotonic: one offset to time.time()
        answers.write(json.dumps(sim.graphql_url) + "\n")
        answers.flush()
        for line in questions:
            command, argument = json.loads(line)
            if command == "stop":
                return
            answers.write(json.dumps(_answer(state, offset, command, argument)) + "\n")
            answers.flush()


class ExpoProcess:
    """The simulator's process: start, ask, stop (a context manager)."""

    def __init__(self, *, tokens: set[str], config: SimulatorConfig) -> None:
        self._command = [
            sys.executable,
            "-m",
            "bench.expo_process",
            json.dumps(sorted(tokens)),
            config.model_dump_json(),
        ]
        self._process: subprocess.Popen[str] | None = None
        self.graphql_url = ""

    def __enter__(self) -> ExpoProcess:
        self._process = subprocess.Popen(
            self._command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.graphql_url = str(self._read())
        return self

    def __exit__(self, *_: object) -> None:
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None and process.stdin is not None:
                process.stdin.write(json.dumps(["stop", None]) + "\n")
                process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    def _read(self) -> Any:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the Expo simulator process exited (status {self._process.wait()})")
        return json.loads(line)

    def _ask(self, command: str, argument: Any = None) -> Any:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps([command, argument]) + "\n")
        self._process.stdin.flush()
        return self._read()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def configure(self, **changes: Any) -> None:
        self._ask("configure", changes)

    def build_requests(self) -> dict[str, float]:
        """{git ref: time.time() when its createGitHubBuild arrived} (its receipt's creation)."""
        return {str(k): float(v) for k, v in self._ask("build_requests").items()}

    def call_count(self) -> int:
        return int(self._ask("call_count"))

    def calls(self, since: int = 0) -> Counter[str]:
        return Counter({str(k): int(v) for k, v in self._ask("calls", since).items()})

    def builds_polled(self) -> int:
        """Builds asked for by polls so far: one per BuildById, one per alias of a coalesced BuildsById."""
        return int(self._ask("builds_polled"))

    def cpu_seconds(self) -> float | None:
        """The simulator process's CPU time (its answering loop is idle between questions)."""
        return cpu_seconds(self.pid)


if __name__ == "__main__":
    serve(
        set(json.loads(sys.argv[1])), SimulatorConfig.model_validate_json(sys.argv[2]), sys.stdin, sys.stdout
    )
