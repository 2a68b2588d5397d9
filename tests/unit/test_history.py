"""History retention rules (pure planning with an explicit `now`) and the loop around them."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from publishing_operator.adapters.kube import KubeApi, KubeError
from publishing_operator.controller.retention import (
    Deletion,
    RetentionLoop,
    next_ttl_expiry,
    plan_retention,
    run_retention_pass,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


async def retention_deletions(kube: KubeApi, **kwargs: Any) -> list[Deletion]:
    """One retention pass; what it deleted."""
    return (await run_retention_pass(kube, **kwargs)).deleted


def stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def pb(
    name: str,
    phase: str | None,
    *,
    completed: datetime | None = None,
    created: datetime | None = None,
    namespace: str = "default",
    ttl: Any = None,
    spec: Any = "valid",
    deleting: bool = False,
) -> dict[str, Any]:
    """A raw PublishingBuild as the API returns it."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{namespace}-{name}",
        "creationTimestamp": stamp(created or NOW - timedelta(days=30)),
    }
    if deleting:
        meta["deletionTimestamp"] = stamp(NOW)
    if spec == "valid":
        spec = {
            "app": {"projectId": "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90", "platform": "ios"},
            "source": {"github": {"ref": "main"}},
            "expo": {"tokenSecretRef": {"name": "expo"}},
        }
    if ttl is not None:
        spec = {**(spec or {}), "ttlSecondsAfterFinished": ttl}
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if completed is not None:
        status["completionTime"] = stamp(completed)
    obj: dict[str, Any] = {
        "apiVersion": "publishing.dev/v1alpha1",
        "kind": "PublishingBuild",
        "metadata": meta,
    }
    if spec is not None:
        obj["spec"] = spec
    if status:
        obj["status"] = status
    return obj


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def names(deletions: list[Deletion]) -> set[str]:
    return {d.name for d in deletions}


def plan(objects: list[dict[str, Any]], keep_succeeded: int = 100, keep_failed: int = 500) -> list[Deletion]:
    return plan_retention(objects, now=NOW, keep_succeeded=keep_succeeded, keep_failed=keep_failed)


# -- history limits ------------------------------------------------------------------------------


def twelve_finished() -> list[dict[str, Any]]:
    """6 Succeeded and 6 Failed/Cancelled, interleaved in time; the index is the age rank (0 newest)."""
    phases = ["Succeeded", "Failed", "Succeeded", "Cancelled", "Succeeded", "Failed"] * 2
    objects = [pb(f"pb-{i:02d}", phase, completed=ago(10 * (i + 1))) for i, phase in enumerate(phases)]
    random.Random(7).shuffle(objects)  # input order must not matter
    return objects


def test_twelve_finished_keep_the_newest_three_succeeded_and_five_failed() -> None:
    objects = twelve_finished()
    deletions = plan(objects, keep_succeeded=3, keep_failed=5)

    # Succeeded by age: 00, 02, 04, 06, 08, 10 -> keep 00, 02, 04.
    # Failed/Cancelled by age: 01, 03, 05, 07, 09, 11 -> keep 01, 03, 05, 07, 09.
    assert names(deletions) == {"pb-06", "pb-08", "pb-10", "pb-11"}
    survivors = {o["metadata"]["name"] for o in objects} - names(deletions)
    assert survivors == {"pb-00", "pb-02", "pb-04", "pb-01", "pb-03", "pb-05", "pb-07", "pb-09"}
    reasons = {d.name: d.reason for d in deletions}
    assert reasons == {
        "pb-06": "history-succeeded",
        "pb-08": "history-succeeded",
        "pb-10": "history-succeeded",
        "pb-11": "history-failed",
    }
    assert all(d.uid == f"uid-default-{d.name}" and d.namespace == "default" for d in deletions)
    succeeded = next(d for d in deletions if d.name == "pb-06")
    assert "keeps the newest 3" in succeeded.message and "Succeeded at" in succeeded.message


def test_the_plan_is_the_same_for_any_input_order() -> None:
    objects = twelve_finished()
    expected = plan(objects, keep_succeeded=3, keep_failed=5)
    for seed in range(5):
        shuffled = list(objects)
        random.Random(seed).shuffle(shuffled)
        assert plan(shuffled, keep_succeeded=3, keep_failed=5) == expected


def test_failed_and_cancelled_share_the_failed_budget() -> None:
    objects = [
        pb("cancelled-new", "Cancelled", completed=ago(1)),
        pb("failed-2", "Failed", completed=ago(2)),
        pb("cancelled-3", "Cancelled", completed=ago(3)),
        pb("failed-4", "Failed", completed=ago(4)),
        pb("cancelled-5", "Cancelled", completed=ago(5)),
        pb("ok-old", "Succeeded", completed=ago(99)),
    ]
    deletions = plan(objects, keep_succeeded=1, keep_failed=3)
    assert names(deletions) == {"failed-4", "cancelled-5"}
    assert {d.reason for d in deletions} == {"history-failed"}


def test_limits_apply_per_namespace() -> None:
    objects = [
        pb(f"{ns}-{i}", "Succeeded", completed=ago(i + (0.5 if ns == "b" else 0)), namespace=ns)
        for ns in ("a", "b")
        for i in range(3)
    ] + [pb("c-0", "Failed", completed=ago(100), namespace="c")]
    deletions = plan(objects, keep_succeeded=2, keep_failed=1)
    assert sorted((d.namespace, d.name) for d in deletions) == [("a", "a-2"), ("b", "b-2")]


def test_running_and_undeletable_resources_are_never_touched() -> None:
    ancient = ago(10_000)
    objects = [
        pb("pending", "Pending", created=ancient),
        pb("queued", "Queued", created=ancient),
        pb("building", "Building", created=ancient, ttl=0),
        pb("submitting", "Submitting", created=ancient),
        pb("no-status", None, created=ancient),
        pb("finished-without-completion-time", "Succeeded", created=ancient, ttl=0),
        pb("being-deleted", "Failed", completed=ancient, deleting=True, ttl=0),
        # running, but a stale completionTime from an earlier attempt must not make it a candidate
        pb("retrying", "Queued", completed=ancient, ttl=0),
        {"metadata": {"name": "garbage-status", "namespace": "default", "uid": "u"}, "status": "x"},
        {"metadata": {"name": "bad-phase", "namespace": "default", "uid": "u2"}, "status": {"phase": "Odd"}},
        {"metadata": {"name": "no-uid", "namespace": "default"}, "status": {"phase": "Failed"}},
        pb("newest-ok", "Succeeded", completed=ago(1)),
        pb("newest-failed", "Failed", completed=ago(1)),
    ]
    deletions = plan(objects, keep_succeeded=0, keep_failed=0)
    assert names(deletions) == {"newest-ok", "newest-failed"}


def test_a_being_deleted_resource_takes_no_slot() -> None:
    objects = [
        pb("leaving", "Succeeded", completed=ago(1), deleting=True),
        pb("second", "Succeeded", completed=ago(2)),
        pb("third", "Succeeded", completed=ago(3)),
    ]
    assert names(plan(objects, keep_succeeded=1)) == {"third"}


def test_zero_limits_keep_none_of_that_kind() -> None:
    objects = [
        pb("ok", "Succeeded", completed=ago(1)),
        pb("failed", "Failed", completed=ago(1)),
        pb("cancelled", "Cancelled", completed=ago(2)),
    ]
    assert names(plan(objects, keep_succeeded=0, keep_failed=5)) == {"ok"}
    assert names(plan(objects, keep_succeeded=5, keep_failed=0)) == {"failed", "cancelled"}
    assert names(plan(objects, keep_succeeded=0, keep_failed=0)) == {"ok", "failed", "cancelled"}


def test_negative_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        plan([], keep_succeeded=-1)


def test_ties_break_by_creation_then_name() -> None:
    same = ago(5)
    objects = [
        pb("zz-created-first", "Succeeded", completed=same, created=ago(60)),
        pb("aa-created-last", "Succeeded", completed=same, created=ago(30)),
        pb("bb-twin", "Succeeded", completed=same, created=ago(45)),
        pb("cc-twin", "Succeeded", completed=same, created=ago(45)),
    ]
    # Newest first: aa (created last), then the twins with the later name counting newer, then zz.
    oldest_first = ["zz-created-first", "bb-twin", "cc-twin", "aa-created-last"]
    for permutation in itertools.permutations(objects):
        for keep in range(5):
            deleted = [d.name for d in plan(list(permutation), keep_succeeded=keep)]
            assert deleted == oldest_first[: 4 - keep]


# -- TTL -----------------------------------------------------------------------------------------


def test_ttl_deletes_exactly_the_expired() -> None:
    objects = [
        pb("expired", "Succeeded", completed=ago(10), ttl=300),
        pb("expires-right-now", "Failed", completed=ago(5), ttl=300),
        pb("one-second-left", "Cancelled", completed=ago(5) + timedelta(seconds=1), ttl=300),
        pb("zero-ttl", "Succeeded", completed=ago(0), ttl=0),
        pb("not-yet", "Succeeded", completed=ago(1), ttl=3600),
        pb("no-ttl", "Succeeded", completed=ago(100_000)),
        pb("running-ttl", "Building", ttl=0),
    ]
    deletions = plan(objects)
    assert names(deletions) == {"expired", "expires-right-now", "zero-ttl"}
    assert {d.reason for d in deletions} == {"ttl"}
    expired = next(d for d in deletions if d.name == "expired")
    assert "ttlSecondsAfterFinished=300 expired at 2026-05-01T11:55:00Z" in expired.message


def test_ttl_deletions_take_no_history_slot() -> None:
    objects = [
        pb("newest-expired", "Succeeded", completed=ago(1), ttl=0),
        pb("second", "Succeeded", completed=ago(2)),
        pb("third", "Succeeded", completed=ago(3)),
        pb("fourth", "Succeeded", completed=ago(4)),
    ]
    deletions = plan(objects, keep_succeeded=2)
    assert [(d.name, d.reason) for d in deletions] == [
        ("newest-expired", "ttl"),
        ("fourth", "history-succeeded"),
    ]


def test_an_invalid_spec_counts_by_status_and_keeps_a_valid_ttl() -> None:
    objects = [
        pb("no-spec", "Failed", completed=ago(1), spec=None),
        pb("broken-spec", "Failed", completed=ago(2), spec={"app": "nonsense"}),
        pb("broken-spec-with-ttl", "Failed", completed=ago(3), spec={"app": 1}, ttl=60),
        pb("bad-ttl", "Failed", completed=ago(4), ttl="soon"),
        pb("negative-ttl", "Failed", completed=ago(5), ttl=-1),
    ]
    assert [(d.name, d.reason) for d in plan(objects)] == [("broken-spec-with-ttl", "ttl")]
    assert [d.name for d in plan(objects, keep_failed=2)] == [
        "broken-spec-with-ttl",
        "negative-ttl",
        "bad-ttl",
    ]


def test_next_ttl_expiry_is_the_earliest_future_one() -> None:
    objects = [
        pb("expired", "Succeeded", completed=ago(10), ttl=60),
        pb("later", "Succeeded", completed=ago(1), ttl=3600),
        pb("sooner", "Failed", completed=ago(1), ttl=120),
        pb("running", "Building", ttl=1),
        pb("no-ttl", "Succeeded", completed=ago(1)),
    ]
    assert next_ttl_expiry(objects, now=NOW) == ago(1) + timedelta(seconds=120)
    assert next_ttl_expiry(objects[3:], now=NOW) is None


# -- enforce_retention and the loop, against an in-memory API ----------------------------------------


class FakeKube(KubeApi):
    """Lists and deletes in memory; the uid precondition and 404 behave as the API's."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:  # no HTTP client
        self.objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
        self.list_calls: list[str | None] = []
        self.fail_lists = 0
        self.fail_deletes: set[str] = set()

    async def list_publishing_builds(self, namespace: str | None = None) -> list[dict[str, Any]]:
        self.list_calls.append(namespace)
        if self.fail_lists:
            self.fail_lists -= 1
            raise KubeError("GET /apis/...: HTTP 503", 503)
        return [o for (ns, _), o in self.objects.items() if namespace is None or ns == namespace]

    async def delete_publishing_build(self, namespace: str, name: str, uid: str) -> None:
        if name in self.fail_deletes:
            raise KubeError(f"DELETE {name}: HTTP 500", 500)
        obj = self.objects.get((namespace, name))
        if obj is not None and obj["metadata"]["uid"] == uid:
            del self.objects[(namespace, name)]

    def names(self) -> set[str]:
        return {name for _, name in self.objects}


async def test_a_retention_pass_deletes_and_logs_each(caplog: pytest.LogCaptureFixture) -> None:
    kube = FakeKube([*twelve_finished(), pb("running", "Building", created=ago(10_000))])
    caplog.set_level("INFO", logger="publishing_operator.controller.retention")
    deleted = await retention_deletions(kube, namespaces=(), keep_succeeded=3, keep_failed=5, now=NOW)
    assert names(deleted) == {"pb-06", "pb-08", "pb-10", "pb-11"}
    assert kube.names() == {"pb-00", "pb-02", "pb-04", "pb-01", "pb-03", "pb-05", "pb-07", "pb-09", "running"}
    assert kube.list_calls == [None]
    lines = [r for r in caplog.records if "retention: deleted" in r.getMessage()]
    assert len(lines) == 4 and all(r.levelname == "INFO" for r in lines)
    assert any("default/pb-11 (history-failed)" in r.getMessage() for r in lines)
    assert {getattr(r, "resource", None) for r in lines} == {"pb-06", "pb-08", "pb-10", "pb-11"}


async def test_a_retention_pass_lists_only_the_given_namespaces() -> None:
    kube = FakeKube([pb(f"{ns}-old", "Succeeded", completed=ago(9), namespace=ns) for ns in ("a", "b", "c")])
    deleted = await retention_deletions(kube, namespaces=("a", "b"), keep_succeeded=0, keep_failed=0, now=NOW)
    assert sorted(d.namespace for d in deleted) == ["a", "b"]
    assert kube.list_calls == ["a", "b"]
    assert kube.names() == {"c-old"}


async def test_a_failed_delete_does_not_stop_the_others() -> None:
    kube = FakeKube([pb(f"old-{i}", "Failed", completed=ago(i + 1)) for i in range(3)])
    kube.fail_deletes = {"old-1"}
    deleted = await retention_deletions(kube, namespaces=(), keep_succeeded=0, keep_failed=0, now=NOW)
    assert names(deleted) == {"old-0", "old-2"}
    assert kube.names() == {"old-1"}


def test_the_loop_waits_for_the_interval_or_the_next_expiry_but_at_least_min_wait() -> None:
    loop = RetentionLoop(FakeKube([]), keep_succeeded=1, keep_failed=1, interval=60, clock=lambda: NOW)
    assert loop._delay(None) == 60
    assert loop._delay(NOW + timedelta(seconds=5)) == 5
    assert loop._delay(NOW + timedelta(milliseconds=100)) == 1
    assert loop._delay(NOW - timedelta(seconds=5)) == 1
    assert loop._delay(NOW + timedelta(hours=2)) == 60


async def test_the_loop_survives_errors_and_runs_a_pass_when_triggered() -> None:
    kube = FakeKube([pb("old", "Succeeded", completed=ago(9)), pb("new", "Succeeded", completed=ago(1))])
    kube.fail_lists = 1
    loop = RetentionLoop(kube, keep_succeeded=1, keep_failed=1, interval=3600, clock=lambda: NOW)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        async with asyncio.timeout(10):
            await loop.wait_passes(1)
        assert loop.last_error is not None and "503" in loop.last_error
        assert kube.names() == {"old", "new"}

        loop.trigger()  # without it the next pass would be an hour away
        async with asyncio.timeout(10):
            await loop.wait_passes(2)
        assert loop.last_error is None
        assert kube.names() == {"new"}
        assert loop.deleted_total == 1
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


async def test_the_loop_wakes_for_the_next_ttl_expiry() -> None:
    # "now" runs with the event loop's clock, from 0.2 s before "soon" expires at NOW (a minute's TTL).
    running = asyncio.get_running_loop()
    start, base = running.time(), NOW - timedelta(seconds=0.2)

    def clock() -> datetime:
        return base + timedelta(seconds=running.time() - start)

    kube = FakeKube(
        [pb("soon", "Succeeded", completed=ago(1), ttl=60), pb("keep", "Succeeded", completed=NOW)]
    )
    loop = RetentionLoop(kube, keep_succeeded=5, keep_failed=5, interval=3600, min_wait=0.05, clock=clock)
    loop.start()
    try:
        async with asyncio.timeout(10):
            await loop.wait_passes(1)
            assert kube.names() == {"soon", "keep"}
            assert loop.last_next_expiry == NOW
            await loop.wait_passes(2)  # woken by the expiry, an hour before the interval
        assert kube.names() == {"keep"}
    finally:
        await loop.stop()
    assert loop._task is None


async def test_stop_ends_an_idle_loop_at_once() -> None:
    loop = RetentionLoop(FakeKube([]), keep_succeeded=1, keep_failed=1, interval=3600).start()
    async with asyncio.timeout(10):
        await loop.wait_passes(1)
        await loop.stop()
    await loop.stop()  # idempotent
