"""Watch on both API servers, as kopf and `kubectl get -w` use it: from a list's resourceVersion,
with a label selector, with initial events and bookmarks, and from a resourceVersion too old."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

from tests.differential.normalize import assert_same, normalize
from tests.differential.pair import Pair
from tests.differential.test_requests import MERGE, in_ns, one, pb, pbs
from tests.fixtures.kube import Kube

Event = dict[str, Any]


async def watch(kube: Kube, params: dict[str, str], count: int, timeout: float = 15.0) -> list[Event]:
    """The first `count` events of a watch on the test's PublishingBuilds (or fewer at the deadline)."""
    events: list[Event] = []

    async def run() -> None:
        async with (
            kube.client_session() as session,
            session.get(pbs(kube), params={"watch": "true", **params}) as response,
        ):
            assert response.status == 200, await response.text()
            async for line in response.content:
                if line.strip():
                    events.append(json.loads(line))
                    if len(events) >= count:
                        return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), timeout)
    return events


def shapes(events: list[Event]) -> list[Any]:
    return [normalize(event) for event in events]


async def list_version(kube: Kube) -> str:
    code, listing = await kube.request("GET", pbs(kube))
    assert code == 200
    return str(listing["metadata"]["resourceVersion"])


async def test_watch_from_a_list_sees_each_change_once(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    await pair.same("POST", pbs, in_ns(pair, pb("b")))
    since = {id(kube): await list_version(kube) for kube in pair.both()}
    await pair.same("PATCH", one("a"), {"spec": {"cancel": True}}, content_type=MERGE)
    await pair.same("PATCH", one("a", "status"), {"status": {"phase": "Cancelled"}}, content_type=MERGE)
    await pair.same("POST", pbs, in_ns(pair, pb("c")))
    await pair.same("DELETE", one("b"))
    emulator, real = [await watch(kube, {"resourceVersion": since[id(kube)]}, 4) for kube in pair.both()]
    assert [event["type"] for event in real] == ["MODIFIED", "MODIFIED", "ADDED", "DELETED"]
    assert_same(shapes(emulator), shapes(real))


async def test_watch_without_a_version_starts_with_the_current_objects(pair: Pair) -> None:
    for name in ("a", "b"):
        await pair.same("POST", pbs, in_ns(pair, pb(name)))
    for params in ({}, {"resourceVersion": "0"}):
        emulator, real = [await watch(kube, params, 2) for kube in pair.both()]
        key = lambda event: event["object"]["metadata"]["name"]  # noqa: E731 - order is not promised
        assert_same(shapes(sorted(emulator, key=key)), shapes(sorted(real, key=key)))


async def test_watch_with_a_selector_sees_objects_enter_and_leave(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a", tier="gold")))
    since = {id(kube): await list_version(kube) for kube in pair.both()}
    relabel = {"metadata": {"labels": {"tier": "silver"}}}
    await pair.same("PATCH", one("a"), relabel, content_type=MERGE)
    await pair.same("PATCH", one("a"), {"metadata": {"labels": {"tier": "gold"}}}, content_type=MERGE)
    emulator, real = [
        await watch(kube, {"resourceVersion": since[id(kube)], "labelSelector": "tier=gold"}, 2)
        for kube in pair.both()
    ]
    assert [event["type"] for event in real] == ["DELETED", "ADDED"]
    assert_same(shapes(emulator), shapes(real))


async def test_initial_events_end_with_a_bookmark(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    emulator, real = [await watch(kube, params, 2) for kube in pair.both()]
    assert [event["type"] for event in real] == ["ADDED", "BOOKMARK"]
    assert_same(shapes(emulator), shapes(real))


async def test_initial_events_need_resource_version_match_not_older_than(pair: Pair) -> None:
    await pair.same("GET", pbs, params={"watch": "true", "sendInitialEvents": "true"})


async def test_a_watch_from_a_version_older_than_the_history_is_410_gone(pair: Pair) -> None:
    emulator, real = [await watch(kube, {"resourceVersion": "1"}, 1, timeout=10) for kube in pair.both()]
    assert [event["type"] for event in real] == ["ERROR"]
    for event in (*emulator, *real):  # "too old resource version: 1 (215)": each server's own oldest
        event["object"]["message"] = re.sub(r"\(\d+\)", "(<oldest>)", event["object"]["message"])
    assert_same(shapes(emulator), shapes(real))
