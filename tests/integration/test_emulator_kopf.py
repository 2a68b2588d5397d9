"""kopf against the emulated API: handlers run once, finalizers work, a restart re-runs nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest

from tests.fixtures.kube import Kube
from tests.integration.test_emulator_api import WIDGET_CRD, widget

pytestmark = pytest.mark.integration

LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"


@dataclass
class Calls:
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def make_registry(kube: Kube, calls: Calls, *, via_kubeconfig: bool = False) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if via_kubeconfig:  # kopf's own kubeconfig reader: server, CA data, token
            return kopf.login_with_kubeconfig(**kwargs)
        return kube.connection_info()

    @kopf.on.create("example.dev", "v1", "widgets", id="created", registry=registry)
    def created(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
        calls.created.append(name)
        kopf.info(body, reason="Seen", message="the test handler saw it")  # a core v1 Event
        return {"seen": True}

    @kopf.on.delete("example.dev", "v1", "widgets", id="deleted", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        calls.deleted.append(name)

    return registry


@contextlib.asynccontextmanager
async def running_operator(kube: Kube, calls: Calls, *, via_kubeconfig: bool = False) -> AsyncIterator[None]:
    settings = kopf.OperatorSettings()
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=make_registry(kube, calls, via_kubeconfig=via_kubeconfig),
            settings=settings,
            clusterwide=True,
            standalone=True,
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), timeout=15)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


def handled(obj: dict[str, Any] | None) -> bool:
    return obj is not None and LAST_HANDLED in (obj["metadata"].get("annotations") or {})


async def test_kopf_handles_each_object_once_across_a_restart(kube: Kube) -> None:
    kube.apply([WIDGET_CRD, widget("before")])

    first = Calls()
    async with running_operator(kube, first):
        kube.apply([widget("during")])
        for name in ("before", "during"):
            obj = await kube.wait_for(handled, "widgets", name)
            assert obj is not None
            assert obj["status"]["created"] == {"seen": True}  # written through /status
            assert obj["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    assert sorted(first.created) == ["before", "during"]

    def seen_after(events: list[dict[str, Any]]) -> bool:
        return any(e["involvedObject"]["name"] == "after" and e["reason"] == "Seen" for e in events)

    second = Calls()
    async with running_operator(kube, second):
        kube.apply([widget("after")])
        await kube.wait_for(handled, "widgets", "after")
        status, _ = await kube.request("DELETE", kube.path("widgets", "during"))
        assert status == 200
        await kube.wait_for(lambda obj: obj is None, "widgets", "during")  # the finalizer was released
        await kube.wait_for_list(seen_after, "events")  # kopf.info() posted a core v1 Event
    assert second.created == ["after"]  # nothing handled before the restart ran again
    assert second.deleted == ["during"]


async def test_kopf_over_https_logs_in_with_the_kubeconfig(
    kube_tls: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube_tls.kubeconfig))
    kube_tls.apply([WIDGET_CRD, widget("secure")])
    calls = Calls()
    async with running_operator(kube_tls, calls, via_kubeconfig=True):
        await kube_tls.wait_for(handled, "widgets", "secure")
    assert calls.created == ["secure"]
