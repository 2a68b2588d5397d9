"""The emulator's injected faults (faults.py) and its request journal, over real sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.fixtures.kube import Kube

pytestmark = [
    pytest.mark.integration,
    pytest.mark.emulator_only("it injects faults through the emulator's kmock reactions (kube.handle)"),
]

CM = "/api/v1/namespaces/default/configmaps"
PB = "/apis/publishing.dev/v1alpha1/namespaces/default/publishingbuilds"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def publishing_build(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "publishing.dev/v1alpha1",
        "kind": "PublishingBuild",
        "metadata": {"name": name},
        "spec": {
            "app": {"projectId": "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90", "platform": "ios"},
            "source": {"github": {"ref": "main"}},
            "expo": {"tokenSecretRef": {"name": "expo-robot"}},
        },
    }


async def test_an_error_answers_the_matching_requests_only(kube: Kube) -> None:
    kube.apply_crds()
    assert (await kube.request("POST", PB, publishing_build("a")))[0] == 201
    kube.fault(kind="error", code=409, verb="patch", subresource="status", count=2)
    merge = "application/merge-patch+json"
    status_patch = {"status": {"phase": "Pending"}}
    # Another write (the main resource) is not affected.
    assert (await kube.request("PATCH", f"{PB}/a", {"metadata": {"labels": {"x": "y"}}}, content_type=merge))[
        0
    ] == 200
    for _ in range(2):
        code, body = await kube.request("PATCH", f"{PB}/a/status", status_patch, content_type=merge)
        assert (code, body["reason"]) == (409, "Conflict")
    code, body = await kube.request("PATCH", f"{PB}/a/status", status_patch, content_type=merge)
    assert (code, body["status"]["phase"]) == (200, "Pending")
    assert kube.handle.faults.injected["error"] == 2


async def test_a_503_carries_retry_after(kube: Kube) -> None:
    kube.fault(kind="error", code=503, retry_after=7, resource="configmaps")
    async with kube.handle.client_session() as session, session.get(CM) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "7"
        body = await response.json()
    assert (body["reason"], body["details"]["retryAfterSeconds"]) == ("ServiceUnavailable", 7)


@pytest.mark.parametrize(("when", "applied"), [("before", False), ("after", True)])
async def test_a_dropped_connection_before_or_after_the_write(kube: Kube, when: str, applied: bool) -> None:
    kube.fault(kind="drop", verb="create", resource="configmaps", when=when)
    with pytest.raises(aiohttp.ClientError):
        await kube.request("POST", CM, configmap("dropped", a="1"))
    assert (await kube.get("configmaps", "dropped") is not None) is applied
    assert (await kube.request("POST", CM, configmap("next")))[0] == 201


async def watch_lines(kube: Kube, query: str, lines: list[dict[str, Any]]) -> None:
    """Read a watch stream into `lines` until it ends; a dropped connection ends it too."""
    try:
        async with (
            kube.handle.client_session() as session,
            session.get(f"{CM}?watch=true{query}") as response,
        ):
            async for raw in response.content:
                lines.append(json.loads(raw))
    except aiohttp.ClientError:
        lines.append({"type": "CUT"})


async def until(check: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_cut_watches_ends_every_open_stream(kube: Kube) -> None:
    seen: list[dict[str, Any]] = []
    watcher = asyncio.create_task(watch_lines(kube, "", seen))
    await kube.request("POST", CM, configmap("one"))
    await until(lambda: any(e.get("object", {}).get("metadata", {}).get("name") == "one" for e in seen))
    kube.fault(kind="cut_watches")
    await asyncio.wait_for(watcher, 10)
    assert seen[-1]["type"] in ("CUT", "ADDED")  # the stream ended without a clean goodbye
    assert kube.handle.faults.injected["cut_watches"] == 1


async def test_gone_answers_a_resumed_watch_only(kube: Kube) -> None:
    kube.fault(kind="gone", resource="configmaps")
    fresh: list[dict[str, Any]] = []
    fresh_watch = asyncio.create_task(watch_lines(kube, "&timeoutSeconds=1", fresh))
    await asyncio.wait_for(fresh_watch, 10)
    assert all(e["type"] != "ERROR" for e in fresh)  # a watch from "now" is not a resume: unaffected
    resumed: list[dict[str, Any]] = []
    await asyncio.wait_for(watch_lines(kube, "&resourceVersion=1", resumed), 10)
    assert [(e["type"], e["object"]["code"]) for e in resumed] == [("ERROR", 410)]


async def test_an_outage_drops_everything_until_it_ends(kube: Kube) -> None:
    seen: list[dict[str, Any]] = []
    watcher = asyncio.create_task(watch_lines(kube, "", seen))
    await asyncio.sleep(0)
    kube.fault(kind="outage", seconds=1.0)
    await asyncio.wait_for(watcher, 10)
    with pytest.raises(aiohttp.ClientError):
        await kube.request("GET", CM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        try:
            code, _ = await kube.request("GET", CM)
            break
        except aiohttp.ClientError:
            assert loop.time() < deadline, "the API did not come back"
            await asyncio.sleep(0.1)
    assert code == 200
    assert any(record.fault == "outage" for record in kube.journal())


async def test_the_journal_records_every_request_and_the_admin_api_serves_it(kube: Kube) -> None:
    await kube.request("POST", "/api/v1/namespaces/kube-public/configmaps", configmap("x"))
    await kube.request("GET", f"{CM}/missing")
    async with kube.handle.client_session() as session:
        async with session.post("/__emulator/faults", json=[{"kind": "latency", "seconds": 0.01}]) as added:
            assert added.status == 200
            assert (await added.json())["pending"][0]["kind"] == "latency"
        async with session.get("/__emulator/requests") as listed:
            journal = await listed.json()
    interesting = [(r["verb"], r["resource"], r["namespace"], r["name"]) for r in journal]
    assert ("create", "configmaps", "kube-public", None) in interesting
    assert ("get", "configmaps", "default", "missing") in interesting
