"""The Kubernetes API server a side-by-side run uses, behind one small interface.

`ControlPlane` is what bench.operator_side needs from an API server: a kubeconfig for the operator,
apply, create-many-at-once (with the time of each create call), every committed write with the time
it was seen, and, where the server can tell, the operator's requests and the server's own CPU.

`EmulatedControlPlane` is the emulated API (publishing_testkit.kube_emulator) in a thread of this
process: its CPU is this thread's, not the operator's. A real kube-apiserver + etcd (another
process) plugs in by implementing the same methods: `recorded()` from a watch on PublishingBuilds
and Events, `cpu_seconds()` from /proc of its processes, `operator_requests()` from its audit log or
`apiserver_request_total` by user agent (or None: the table then says "-").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from tests.fixtures.kube import CRDS_DIR, EXAMPLES_DIR
from tests.fixtures.operator import load_yaml

from bench.stack import (
    GROUP,
    PLURAL,
    Recorded,
    WriteRecorder,
    emulator_operator_requests,
    thread_cpu_seconds,
    without_cel_rules,
)
from publishing_testkit.kube_emulator import EmulatorThread, emulator_in_thread, load_manifests


class ControlPlane(Protocol):
    label: str  # shown in the table's header, e.g. "emulated API"
    kubeconfig: Path

    def create_at_once(self, manifests: Sequence[dict[str, Any]]) -> dict[str, float]:
        """POST every manifest concurrently; {name: time.time() just before its POST was sent}."""
        ...

    def recorded(self, since: int = 0) -> list[Recorded]:
        """The writes committed so far (ADDED / MODIFIED / DELETED) from the `since`-th on, in order,
        each timestamped (time.time()) when it was committed or seen."""
        ...

    def operator_requests(self) -> Counter[str] | None:
        """The operator's requests so far, as "VERB resource[/sub]"; None when the server cannot tell."""
        ...

    def cpu_seconds(self) -> float | None:
        """CPU time the API server has used so far (None when unknown)."""
        ...


class EmulatedControlPlane:
    """The emulated API in a thread of this process; the CRDs without CEL unless `cel`."""

    label = "emulated API"

    def __init__(self, thread: EmulatorThread, kubeconfig: Path, recorder: WriteRecorder) -> None:
        self.thread = thread
        self.kubeconfig = kubeconfig
        self._recorder = recorder

    @classmethod
    @contextlib.contextmanager
    def started(cls, *, cel: bool = False) -> Iterator[EmulatedControlPlane]:
        """CEL in the emulator is pure Python (~40 ms per write, in this process): off by default,
        as in bench.stack; the structural schema is still enforced."""
        with (
            tempfile.TemporaryDirectory(prefix="publishing-bench-") as tmpdir,
            emulator_in_thread(bookmark_interval=10.0, event_log_size=1_000_000) as thread,
        ):
            thread.handle.emulator.request_history = 1_000_000  # keep every request: we count them
            kubeconfig = thread.handle.write_kubeconfig(Path(tmpdir) / "kubeconfig")
            crds = load_manifests(CRDS_DIR)
            manifests = [*(crds if cel else [without_cel_rules(c) for c in crds])]
            thread.call(lambda: thread.handle.apply(manifests))
            secrets = load_yaml(EXAMPLES_DIR / "secrets.yaml")
            thread.call(lambda: thread.handle.apply(secrets))
            recorder = WriteRecorder(thread)
            recorder.start()
            try:
                yield cls(thread, kubeconfig, recorder)
            finally:
                recorder.stop()

    def create_at_once(self, manifests: Sequence[dict[str, Any]]) -> dict[str, float]:
        called: dict[str, float] = {}

        async def post_all() -> None:
            handle = self.thread.handle
            async with handle.client_session(headers={"Content-Type": "application/json"}) as session:

                async def post(body: dict[str, Any]) -> None:
                    meta = body["metadata"]
                    path = f"/apis/{GROUP}/v1alpha1/namespaces/{meta.get('namespace', 'default')}/{PLURAL}"
                    called[meta["name"]] = time.time()
                    async with session.post(path, data=json.dumps(body)) as response:
                        if response.status >= 300:
                            raise RuntimeError(f"create failed: {response.status} {await response.text()}")

                await asyncio.gather(*(post(body) for body in manifests))

        self.thread.call(post_all, timeout=300)
        return called

    def recorded(self, since: int = 0) -> list[Recorded]:
        return self._recorder.writes[since:]

    def operator_requests(self) -> Counter[str]:
        return Counter(emulator_operator_requests(self.thread))

    def cpu_seconds(self) -> float | None:
        return thread_cpu_seconds("k8s-emulator")
