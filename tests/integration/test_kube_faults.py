"""Issue 15: the operator against Kubernetes API faults, one at a time (the chaos test mixes them):
each ends with the build Succeeded, one EAS build, and no traceback in the operator log."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.operator import Stack, phase, publishing_build

pytestmark = [
    pytest.mark.integration,
    pytest.mark.emulator_only("it injects faults through the emulator's kmock reactions (kube.handle)"),
]


async def finishes_once(stack: Stack, name: str) -> dict[str, Any]:
    done = await stack.wait_phase(name, "Succeeded", "Failed", timeout=120)
    assert phase(done) == "Succeeded", f"{done['status'].get('message')}\n{stack.operator_logs()[-6000:]}"
    assert len(stack.builds()) == 1, stack.builds()
    assert "Traceback" not in stack.operator_logs()
    return done


async def test_a_conflict_whose_re_read_fails_too_is_retried_not_fatal(stack: Stack) -> None:
    """Found by the chaos run: a 409 on a status write, then a 504 on the re-read, killed the
    resource's worker ("Task exception was never retrieved"): nothing moved it any more."""
    stack.apply_example_secrets()
    stack.apply(publishing_build("conflict-then-504", submit=False))
    operator = "publishing-operator"  # the operator's own requests, not the test's
    stack.kube.fault(kind="error", code=409, verb="patch", subresource="status", count=1, agent=operator)
    stack.kube.fault(kind="error", code=504, verb="get", resource="publishingbuilds", count=3, agent=operator)
    stack.operator()
    await finishes_once(stack, "conflict-then-504")


async def test_status_writes_lost_after_they_were_applied(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.apply(publishing_build("lost-writes", submit=False))
    # Writes that claim nothing (Queued, Building's progress): their loss is only a retry.
    for text in ('"phase":"Queued"', '"reason":"BuildQueued"', '"reason":"BuildInProgress"'):
        stack.kube.fault(kind="drop", verb="patch", subresource="status", when="after", body_contains=text)
    stack.operator()
    await finishes_once(stack, "lost-writes")
    assert stack.kube.handle.faults.injected["drop"] >= 2


async def test_a_lost_answer_to_the_claim_write_still_builds(stack: Stack) -> None:
    """The claim write is applied but its answer lost: the status names this process as the claimant
    (claimedBy) and the process knows it sent nothing, so it creates the build, once."""
    stack.apply_example_secrets()
    stack.apply(publishing_build("lost-claim", submit=False))
    stack.kube.fault(
        kind="drop", verb="patch", subresource="status", when="after", body_contains="requestKey"
    )
    stack.operator()
    await finishes_once(stack, "lost-claim")


async def test_an_outage_mid_build_then_a_410_on_the_re_watch(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 2000.0})  # 10 s: the outage comes mid-build
    stack.apply(publishing_build("outage", submit=True))
    stack.operator()
    await stack.wait("outage", lambda o: bool(((o.get("status") or {}).get("build") or {}).get("id")))
    stack.kube.fault(kind="gone", count=2)  # the watch that resumes after the outage gets 410
    stack.kube.fault(kind="outage", seconds=4.0)
    await stack.until(
        lambda: not stack.kube.handle.faults.in_outage, timeout=30, what="the end of the outage"
    )
    await finishes_once(stack, "outage")
    assert stack.kube.handle.faults.injected["gone"] >= 1
