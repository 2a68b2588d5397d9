"""The Expo simulator in a process of its own, for the side-by-side runs.

The old design's harness runs its Expo stub as a process beside the worker and Redis. Ours ran the
simulator as a thread of the benchmark process, next to the emulated API server: one interpreter
lock for both, so in the burst the two queued behind each other (the benchmark process was busy
the whole drain) and the operator waited on that queue, not on its own work. Here the simulator
has its own interpreter, as the old design's stub has; the benchmark asks it what it saw over a
pipe (spawned, not forked: the benchmark process runs threads).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from bench.stack import cpu_seconds
from publishing_testkit.expo_simulator.server import SimulatorThread
from publishing_testkit.expo_simulator.state import SimulatorConfig

START_TIMEOUT = 60.0


def _serve(conn: Connection, tokens: set[str], config: SimulatorConfig) -> None:
    """The child: the simulator in a thread, and a loop answering the parent's questions."""
    with SimulatorThread(tokens=tokens, config=config) as sim:
        state = sim.state
        offset = time.time() - state.now()  # simulator instants are monotonic: one offset to time.time()
        conn.send(sim.graphql_url)
        while True:
            try:
                command, argument = conn.recv()
            except EOFError:
                return
            answer: Any = None
            if command == "stop":
                conn.send(None)
                return
            if command == "configure":
                state.configure(argument)
            elif command == "build_requests":
                with state.lock:
                    receipts = list(state.receipts.values())
                answer = {str(r.build_input.get("gitRef")): r.created + offset for r in receipts}
            elif command == "call_count":
                with state.lock:
                    answer = len(state.calls)
            elif command == "calls":
                with state.lock:
                    calls = list(state.calls[argument:])
                answer = Counter(c.operation_name or ",".join(c.fields) or "?" for c in calls)
            elif command == "builds_polled":
                with state.lock:
                    calls = list(state.calls)
                answer = sum(c.selections for c in calls if c.operation_name in ("BuildById", "BuildsById"))
            conn.send(answer)


class ExpoProcess:
    """The simulator's process: start, ask, stop (a context manager)."""

    def __init__(self, *, tokens: set[str], config: SimulatorConfig) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, tokens, config), name="expo-simulator", daemon=True
        )
        self.graphql_url = ""

    def __enter__(self) -> ExpoProcess:
        self._process.start()
        if not self._conn.poll(START_TIMEOUT):
            self._process.kill()
            raise RuntimeError(f"the Expo simulator process did not start within {START_TIMEOUT:.0f}s")
        self.graphql_url = self._conn.recv()
        return self

    def __exit__(self, *_: object) -> None:
        try:
            if self._process.is_alive():
                self._ask("stop")
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def configure(self, **changes: Any) -> None:
        self._ask("configure", changes)

    def build_requests(self) -> dict[str, float]:
        """{git ref: time.time() when its createGitHubBuild arrived} (its receipt's creation)."""
        answer: dict[str, float] = self._ask("build_requests")
        return answer

    def call_count(self) -> int:
        return int(self._ask("call_count"))

    def calls(self, since: int = 0) -> Counter[str]:
        answer: Counter[str] = self._ask("calls", since)
        return answer

    def builds_polled(self) -> int:
        """Builds asked for by polls so far: one per BuildById, one per alias of a coalesced BuildsById."""
        return int(self._ask("builds_polled"))

    def cpu_seconds(self) -> float | None:
        """The simulator process's CPU time (its answering loop is idle between questions)."""
        return cpu_seconds(self.pid)
