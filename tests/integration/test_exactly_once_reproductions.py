"""Issue 15: deterministic reproductions of every way the chaos test (tests/chaos) found to start a
second EAS build for one attempt, adopt another resource's build, or give up a request key. One
resource (or two), one injected fault sequence each; the real operator against the emulated API and
the Expo simulator.

They were `xfail(strict=True)` until the exactly-once protocol was rebuilt (claims numbered and never
reused, receipts and ids persisted before the stamp, lookups before any other create): now they keep
it so.
"""

from __future__ import annotations

from typing import Any

import pytest

from publishing_operator.api import RETRY_ANNOTATION
from tests.fixtures.operator import Stack, phase, publishing_build

pytestmark = pytest.mark.integration


def build_ids(obj: dict[str, Any] | None) -> set[str]:
    status = (obj or {}).get("status") or {}
    found = {h["buildId"] for h in status.get("history") or [] if h.get("buildId")}
    if (status.get("build") or {}).get("id"):
        found.add(status["build"]["id"])
    return found


async def test_a_401_on_the_stamp_creates_no_second_build(stack: Stack) -> None:
    """Found by the chaos run (was: a 401 on UpdateBuildMetadata (the stamp of a created GitHub build)
    sends the resource back to Pending and drops the request key; the same attempt then creates a
    second build, the first runs as an orphan (the client knew its id: ExpoError.build_id))."""
    stack.apply_example_secrets()
    stack.fault(calls=[{"operation": "UpdateBuildMetadata", "http_status": 401}])
    stack.apply(publishing_build("stamp-401", submit=False))
    stack.operator()
    done = await stack.wait_phase("stamp-401", "Succeeded", "Failed", timeout=120)
    builds = stack.builds()
    assert len(builds) == 1, [(b["id"], b["status"], b["message"]) for b in builds]
    assert phase(done) == "Succeeded"


async def test_a_lost_create_answer_with_a_slow_receipt_creates_no_second_build(stack: Stack) -> None:
    """Found by the chaos run (was: CreateGitHubBuild's answer is lost after Expo accepted it, and its
    receipt takes longer than the step's first retry (0.5 s): the look-up finds nothing yet and a
    second build is created)."""
    stack.apply_example_secrets()
    stack.expo.state.configure({"receipt_seconds": 800.0})  # 4 s at the stack's time scale
    stack.fault(calls=[{"operation": "CreateGitHubBuild", "drop": "after"}])
    stack.apply(publishing_build("slow-receipt", submit=False))
    stack.operator()
    done = await stack.wait_phase("slow-receipt", "Succeeded", "Failed", timeout=120)
    builds = stack.builds()
    assert len(builds) == 1, [(b["id"], b["status"], b["message"]) for b in builds]
    assert phase(done) == "Succeeded"


async def test_two_resources_on_one_ref_never_follow_the_same_build(stack: Stack) -> None:
    """Found by the chaos run (was: two resources on the same git ref, both restarted between writing
    their request key and stamping their build: both adopt the one un-stamped build (by ref and
    creation time) and follow it)."""
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 1200.0})
    ref = {"github": {"ref": "refs/heads/main"}}
    stack.apply(publishing_build("same-ref-a", submit=False, source=ref))
    stack.operator()
    started = await stack.wait("same-ref-a", lambda o: bool(build_ids(o)))
    stack.stop_all()
    # As if the operator had died after A's build was created and before it was stamped, while B had
    # written its request key and its create never reached Expo: two resources in Building with a
    # request key and no build id, one un-stamped build on their shared ref.
    (build,) = stack.builds()
    stack.expo.state.builds[build["id"]].metadata.pop("message", None)
    a_key = started["status"]["build"]["requestKey"]
    stack.apply(publishing_build("same-ref-b", submit=False, source=ref))
    b = await stack.get("same-ref-b")
    assert b is not None
    for name, key in (("same-ref-a", a_key), ("same-ref-b", f"{b['metadata']['uid']}.1")):
        status = {
            "phase": "Building",
            "attempt": 1,
            "build": {"requestKey": key, "requestedAt": started["status"]["build"]["requestedAt"]},
        }
        code, answer = await stack.kube.request(
            "PUT",
            stack.kube.path("publishingbuilds", name) + "/status",
            {**(await stack.get(name) or {}), "status": status},
        )
        assert code == 200, answer
    # Stamps are slow: both look-ups see the un-stamped build before either stamp lands.
    stack.fault(calls=[{"operation": "UpdateBuildMetadata", "count": 2, "latency": 2.0}])
    stack.operator()
    finished = ("Succeeded", "Failed", "Cancelled")
    done_a = await stack.wait_phase("same-ref-a", *finished, timeout=120)
    done_b = await stack.wait_phase("same-ref-b", *finished, timeout=120)
    assert not (build_ids(done_a) & build_ids(done_b)), (build_ids(done_a), build_ids(done_b))


async def test_a_manual_retry_never_adopts_the_first_runs_build(stack: Stack) -> None:
    """Found by the chaos run (was: a manual retry starts again at attempt 1 with the same request key
    <uid>.1: when its create fails before Expo saw it, the look-up by key adopts the first run's
    finished build, and the retry never builds)."""
    stack.apply_example_secrets()
    stack.fault(outcomes=[{"target": "build", "error_code": "EAS_BUILD_UNKNOWN_GRADLE_ERROR"}])
    stack.apply(publishing_build("retried", submit=False))
    stack.operator()
    await stack.wait_phase("retried", "Failed", timeout=120)
    (first,) = stack.builds()
    first_build = first["id"]
    stack.fault(calls=[{"operation": "CreateGitHubBuild", "drop": "before"}])
    code, answer = await stack.kube.request(
        "PATCH",
        stack.kube.path("publishingbuilds", "retried"),
        {"metadata": {"annotations": {RETRY_ANNOTATION: "again"}}},
        content_type="application/merge-patch+json",
    )
    assert code == 200, answer
    await stack.wait("retried", lambda o: (o.get("status") or {}).get("retryRequest") == "again")
    done = await stack.wait_phase("retried", "Succeeded", "Failed", timeout=120)
    # The lost create may have reached Expo: the retry ends Succeeded or Unconfirmed, never with the
    # first run's build.
    assert (done["status"].get("build") or {}).get("id") != first_build, "the retry adopted the first build"
    messages = [b["message"] for b in stack.builds()]
    assert len(messages) == len(set(messages)), f"a request key on two builds: {messages}"
