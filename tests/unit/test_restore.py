"""Start-up restores the limiter from the listed PublishingBuilds, waiting out a flaky API."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from publishing_operator.adapters.kube import KubeError
from publishing_operator.controller.restore import restore_limiter


class FlakyKube:
    def __init__(self, failures: list[KubeError], items: list[dict[str, Any]]) -> None:
        self.failures = failures
        self.items = items
        self.calls = 0

    async def list_publishing_builds(self, namespace: str | None = None) -> list[dict[str, Any]]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.items


class Limiter:
    def __init__(self) -> None:
        self.restored: tuple[list[str], list[tuple[str, float]]] | None = None

    def restore(self, in_flight: list[str], starts: list[tuple[str, float]]) -> None:
        self.restored = (in_flight, starts)


IN_FLIGHT = {
    "metadata": {"name": "a", "namespace": "default"},
    "status": {
        "phase": "Building",
        "build": {"requestKey": "uid-a.1", "requestedAt": "2026-11-29T10:00:00Z"},
    },
}


async def test_transient_api_failures_are_waited_out_with_backoff() -> None:
    kube = FlakyKube(
        [KubeError("GET: ConnectError", 0), KubeError("GET: HTTP 503", 503), KubeError("GET: HTTP 429", 429)],
        [IN_FLIGHT],
    )
    limiter, slept = Limiter(), []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    ctx: Any = SimpleNamespace(settings=SimpleNamespace(namespaces=()), kube=kube, limiter=limiter)
    await restore_limiter(ctx, sleep=sleep)
    assert kube.calls == 4
    assert slept == [0.5, 1.0, 2.0]
    assert limiter.restored is not None and limiter.restored[0] == ["uid-a.1"]


async def test_a_permanent_api_error_still_fails_start_up() -> None:
    kube = FlakyKube([KubeError("GET: HTTP 403 forbidden", 403)], [])
    ctx: Any = SimpleNamespace(settings=SimpleNamespace(namespaces=()), kube=kube, limiter=Limiter())
    with pytest.raises(KubeError):
        await restore_limiter(ctx)
