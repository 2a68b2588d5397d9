"""History retention against the emulated API: real CRD, status through /status, kubectl to check."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from publishing_operator.adapters.kube import KubeApi
from publishing_operator.controller.retention import Deletion, RetentionLoop, run_retention_pass
from tests.fixtures.kube import EXAMPLES_DIR, Kube

NOW = datetime.now(UTC).replace(microsecond=0)


async def retention_deletions(kube: KubeApi, **kwargs: Any) -> list[Deletion]:
    """One retention pass; what it deleted."""
    return (await run_retention_pass(kube, **kwargs)).deleted


def example_spec() -> dict[str, Any]:
    """The iOS example's spec without submit or TTL (no operator runs, so Secrets do not matter)."""
    manifest = yaml.safe_load((EXAMPLES_DIR / "ios-testflight.yaml").read_text())
    spec: dict[str, Any] = copy.deepcopy(manifest["spec"])
    spec.pop("submit", None)
    spec.pop("ttlSecondsAfterFinished", None)
    return spec


def manifest(name: str, namespace: str = "default", ttl: int | None = None) -> dict[str, Any]:
    spec = example_spec()
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return {
        "apiVersion": "publishing.dev/v1alpha1",
        "kind": "PublishingBuild",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


async def set_status(kube: Kube, name: str, status: dict[str, Any], namespace: str = "default") -> None:
    code, body = await kube.request(
        "PATCH",
        kube.path("pb", name, namespace) + "/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )
    assert code == 200, body
    assert body["status"]["phase"] == status["phase"]


async def finish(kube: Kube, name: str, phase: str, completed: datetime, namespace: str = "default") -> None:
    await set_status(
        kube,
        name,
        {
            "phase": phase,
            "startTime": stamp(completed - timedelta(minutes=20)),
            "completionTime": stamp(completed),
        },
        namespace,
    )


def pb_names(kube: Kube, namespace: str = "default") -> set[str]:
    out = kube.kubectl("get", "pb", "-n", kube.ns(namespace) or namespace, "-o", "name").stdout
    return {line.removeprefix("publishingbuild.publishing.dev/") for line in out.split()}


@pytest.fixture
async def api(kube: Kube) -> AsyncIterator[KubeApi]:
    kube_api = KubeApi(kube.httpx_client(timeout=30.0))
    try:
        yield kube_api
    finally:
        await kube_api.aclose()


# Age rank 0 is the newest; Failed and Cancelled share one budget.
PHASES = ["Succeeded", "Failed", "Succeeded", "Cancelled", "Succeeded", "Failed"] * 2
SURVIVORS = {"pb-00", "pb-02", "pb-04", "pb-01", "pb-03", "pb-05", "pb-07", "pb-09"}


async def test_limits_keep_the_newest_and_never_touch_a_running_resource(kube: Kube, api: KubeApi) -> None:
    kube.apply_crds()
    team_b, own = kube.other_namespace("team-b"), kube.namespace
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team_b}}])
    # The running one is created first and started long ago: the oldest object by every measure.
    kube.apply([manifest("running", ttl=0)])
    await set_status(kube, "running", {"phase": "Building", "startTime": stamp(NOW - timedelta(days=9))})
    names = [f"pb-{i:02d}" for i in range(12)]
    kube.apply([manifest(name) for name in reversed(names)])  # created oldest first
    for i, (name, phase) in enumerate(zip(names, PHASES, strict=True)):
        await finish(kube, name, phase, NOW - timedelta(minutes=10 * (i + 1)))
    # Another namespace has its own budget.
    kube.apply([manifest("b-old", team_b), manifest("b-new", team_b)])
    await finish(kube, "b-old", "Succeeded", NOW - timedelta(days=2), team_b)
    await finish(kube, "b-new", "Succeeded", NOW - timedelta(days=1), team_b)
    assert len(pb_names(kube)) == 13

    deleted = await retention_deletions(api, namespaces=(), keep_succeeded=3, keep_failed=5, now=NOW)

    assert sorted((d.namespace, d.name, d.reason) for d in deleted) == [
        (own, "pb-06", "history-succeeded"),
        (own, "pb-08", "history-succeeded"),
        (own, "pb-10", "history-succeeded"),
        (own, "pb-11", "history-failed"),
    ]
    assert pb_names(kube) == SURVIVORS | {"running"}
    assert pb_names(kube, team_b) == {"b-old", "b-new"}

    # A second pass finds nothing more to do; a limit of 1 in team-b only touches team-b.
    assert await retention_deletions(api, namespaces=(), keep_succeeded=3, keep_failed=5, now=NOW) == []
    deleted = await retention_deletions(api, namespaces=(team_b,), keep_succeeded=1, keep_failed=5, now=NOW)
    assert [(d.namespace, d.name) for d in deleted] == [(team_b, "b-old")]
    assert pb_names(kube, team_b) == {"b-new"}
    assert pb_names(kube) == SURVIVORS | {"running"}


async def test_ttl_deletes_exactly_the_expired(kube: Kube, api: KubeApi) -> None:
    kube.apply_crds()
    kube.apply(
        [
            manifest("expired", ttl=600),
            manifest("not-yet", ttl=3600),
            manifest("no-ttl"),
            manifest("running", ttl=0),
        ]
    )
    await finish(kube, "expired", "Failed", NOW - timedelta(minutes=11))
    await finish(kube, "not-yet", "Succeeded", NOW - timedelta(minutes=11))
    await finish(kube, "no-ttl", "Succeeded", NOW - timedelta(days=300))
    await set_status(kube, "running", {"phase": "Submitting"})

    deleted = await retention_deletions(
        api, namespaces=(kube.namespace,), keep_succeeded=100, keep_failed=500, now=NOW
    )

    assert [(d.name, d.reason) for d in deleted] == [("expired", "ttl")]
    assert pb_names(kube) == {"not-yet", "no-ttl", "running"}

    # An hour later the other one has expired too; the running one (TTL 0) still stays.
    later = NOW + timedelta(hours=1)
    deleted = await retention_deletions(api, namespaces=(), keep_succeeded=100, keep_failed=500, now=later)
    assert [(d.name, d.reason) for d in deleted] == [("not-yet", "ttl")]
    assert pb_names(kube) == {"no-ttl", "running"}


async def test_the_loop_deletes_a_resource_once_it_finishes_with_a_ttl_of_zero(
    kube: Kube, api: KubeApi
) -> None:
    kube.apply_crds()
    kube.apply([manifest("short-lived", ttl=0), manifest("kept")])
    await set_status(kube, "short-lived", {"phase": "Building"})
    await finish(kube, "kept", "Succeeded", NOW)
    loop = RetentionLoop(api, keep_succeeded=5, keep_failed=5, interval=3600).start()
    try:
        async with asyncio.timeout(30):
            await loop.wait_passes(1)
        assert pb_names(kube) == {"short-lived", "kept"}

        await finish(kube, "short-lived", "Cancelled", datetime.now(UTC))
        loop.trigger()  # what the operator does when a resource finishes
        await kube.wait_for(lambda obj: obj is None, "pb", "short-lived", timeout=30)
        assert loop.last_error is None and loop.deleted_total == 1
    finally:
        await loop.stop()
    assert pb_names(kube) == {"kept"}


class RecreatingKubeApi(KubeApi):
    """Re-creates each object just before retention deletes it: the race the uid precondition covers."""

    def __init__(self, client: httpx.AsyncClient, kube: Kube) -> None:
        super().__init__(client)
        self.kube = kube

    async def delete_publishing_build(self, namespace: str, name: str, uid: str) -> None:
        code, body = await self.kube.request("DELETE", self.kube.path("pb", name, namespace))
        assert code == 200, body
        self.kube.apply([manifest(name, namespace)])
        await super().delete_publishing_build(namespace, name, uid)


async def test_a_recreated_namesake_is_never_deleted(kube: Kube) -> None:
    kube.apply_crds()
    kube.apply([manifest("reused-name")])
    await finish(kube, "reused-name", "Failed", NOW - timedelta(days=1))
    old = await kube.get("pb", "reused-name")
    assert old is not None

    racing = RecreatingKubeApi(kube.httpx_client(timeout=30.0), kube)
    try:
        deleted = await retention_deletions(racing, namespaces=(), keep_succeeded=0, keep_failed=0, now=NOW)
    finally:
        await racing.aclose()

    assert [d.uid for d in deleted] == [old["metadata"]["uid"]]  # the planned object is gone ...
    new = await kube.get("pb", "reused-name")
    assert new is not None and new["metadata"]["uid"] != old["metadata"]["uid"]  # ... its namesake stays
    assert pb_names(kube) == {"reused-name"}
