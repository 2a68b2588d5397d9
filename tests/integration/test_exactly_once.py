"""Exactly-once build start under the faults that broke it (issue 15), and with two operators at once.

Each test injects one fault sequence into the Expo simulator (or runs a second operator) and counts
what exists on EAS afterwards: one build per resource, whatever happened in between.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.operator import PROJECT_ID, Stack, phase, publishing_build

pytestmark = pytest.mark.integration

SLOW_RECEIPT = {"receipt_seconds": 1200.0}  # 6 s of real time: longer than every client retry


def reason(obj: dict[str, Any]) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Succeeded":
            return str(cond.get("reason"))
    return None


@pytest.mark.parametrize(
    ("operation", "where"),
    [
        ("byId", "the receipt poll right after the create"),
        ("updateBuildMetadata", "the stamp of the request key into the build"),
    ],
)
async def test_a_401_after_a_github_create_keeps_the_request_and_builds_once(
    stack: Stack, operation: str, where: str
) -> None:
    """Issue 15: a 401 from Expo after a GitHub build was created sent the resource back to Pending,
    dropped the request key, and the same attempt created a second build."""
    stack.apply_example_secrets()
    stack.fault(calls=[{"operation": operation, "count": 1, "http_status": 401}])
    stack.operator()
    stack.apply(publishing_build("token-blip", submit=False))
    done = await stack.wait_phase("token-blip", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded", where
    key = done["status"]["build"]["requestKey"]
    # The id reaches the status first; the key is stamped into the build right after (best effort).
    await stack.until(lambda: [b["message"] for b in stack.builds()] == [key], what="the stamped build")
    assert len(stack.expo.state.calls_of("createGitHubBuild")) == 1


async def test_a_lost_github_create_answer_with_a_slow_receipt_is_adopted_not_repeated(stack: Stack) -> None:
    """Issue 15: the answer to CreateGitHubBuild is lost and the receipt takes longer than the first
    retry: the operator waits (saying so), adopts the build when it appears, and creates no other."""
    stack.apply_example_secrets()
    stack.expo.state.configure(SLOW_RECEIPT)
    stack.fault(calls=[{"operation": "createGitHubBuild", "count": 1, "drop": "after"}])
    stack.operator()
    stack.apply(publishing_build("lost-answer", submit=False))
    confirming = await stack.wait("lost-answer", lambda o: reason(o) == "Confirming", timeout=60)
    assert "Confirming whether EAS started the build" in confirming["status"]["message"]
    done = await stack.wait_phase("lost-answer", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded", done["status"]
    key = done["status"]["build"]["requestKey"]
    await stack.until(lambda: [b["message"] for b in stack.builds()] == [key], what="the stamped build")
    assert stack.builds()[0]["id"] == done["status"]["build"]["id"]
    assert len(stack.expo.state.calls_of("createGitHubBuild")) == 1


async def test_resources_on_one_ref_never_take_each_others_build_nor_a_persons(stack: Stack) -> None:
    """Issue 15: with several resources on the same git ref, adoption by ref and creation time could
    take another resource's un-stamped build. Here one create answer is lost, every receipt is slow,
    and a person starts a build of the same ref on the dashboard meanwhile."""
    stack.apply_example_secrets()
    stack.expo.state.configure(SLOW_RECEIPT)
    stack.fault(calls=[{"operation": "createGitHubBuild", "count": 1, "drop": "after"}])
    stack.expo.state.add_outside_build(
        app_id=PROJECT_ID,
        platform="IOS",
        git_ref="refs/tags/v1.4.2",
        profile="production",
        actor="user-on-the-dashboard",
        message=None,
    )
    stack.operator()
    names = ["same-ref-a", "same-ref-b", "same-ref-c"]
    same_ref = {"github": {"ref": "refs/tags/v1.4.2"}}
    stack.apply(*(publishing_build(name, submit=False, source=same_ref) for name in names))
    done = [await stack.wait_phase(name, "Succeeded", "Failed", timeout=120) for name in names]
    assert [phase(obj) for obj in done] == ["Succeeded"] * 3, [obj["status"] for obj in done]
    ours = [b for b in stack.builds() if b["initiatingActor"] != "user-on-the-dashboard"]
    assert len(ours) == 3 and len(stack.expo.state.calls_of("createGitHubBuild")) == 3
    assert {obj["status"]["build"]["id"] for obj in done} == {b["id"] for b in ours}
    keys = {obj["status"]["build"]["requestKey"] for obj in done}
    await stack.until(
        lambda: (
            {b["message"] for b in stack.builds() if b["initiatingActor"] != "user-on-the-dashboard"} == keys
        ),
        what="every build stamped",
    )
    (theirs,) = [b for b in stack.builds() if b["initiatingActor"] == "user-on-the-dashboard"]
    assert theirs["message"] is None  # never stamped, never adopted


async def test_two_operators_at_once_never_start_a_build_twice(stack: Stack) -> None:
    """Issue 12: two operators that both believe they are active (leader election off) race for
    every resource; every start is won by one of them: one build and one submission per resource."""
    stack.apply_example_secrets()
    stack.operator(leader_election="false")
    stack.operator(leader_election="false")
    names = [f"race-{i}" for i in range(6)]
    stack.apply(
        *(publishing_build(name, platform="ios" if i % 2 else "android") for i, name in enumerate(names))
    )
    done = [await stack.wait_phase(name, "Succeeded", "Failed", timeout=120) for name in names]
    assert [phase(obj) for obj in done] == ["Succeeded"] * len(names), [obj["status"] for obj in done]
    builds = stack.builds()
    assert len(builds) == len(names)
    assert sorted(b["message"] for b in builds) == sorted(
        obj["status"]["build"]["requestKey"] for obj in done
    )
    live = [s for s in stack.submissions() if s["status"] not in ("ERRORED", "CANCELED")]
    assert sorted(s["buildId"] for s in live) == sorted(b["id"] for b in builds)
