"""Issue 12: with two replicas exactly one operator works and the other stands by; the standby takes
over when the leader dies; and nothing is started twice across the hand-over."""

from __future__ import annotations

import pytest

from tests.fixtures.operator import Stack, phase, publishing_build

pytestmark = pytest.mark.integration


async def test_one_replica_leads_the_other_stands_by_and_takes_over(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure(
        {"build_seconds": 3000.0}
    )  # ~15 s of real time: the hand-over happens mid-build
    first = stack.operator(leader_election="true")
    await stack.until(lambda: "leads now" in first.logs(), what="the first replica to lead", timeout=30)
    second = stack.operator(leader_election="true")
    await stack.until(lambda: "standby until it leads" in second.logs(), what="the second replica to start")

    names = [f"ha-{i}" for i in range(4)]
    stack.apply(*(publishing_build(name, submit=False) for name in names))
    await stack.until(lambda: len(stack.builds()) == len(names), what="every build started", timeout=60)
    assert "leads now" not in second.logs()  # the standby did nothing

    first.kill()  # no release: the standby must wait for the lease to expire (15 s), then lead
    await stack.until(lambda: "leads now" in second.logs(), what="the standby to take over", timeout=60)
    done = [await stack.wait_phase(name, "Succeeded", "Failed", timeout=120) for name in names]
    assert [phase(obj) for obj in done] == ["Succeeded"] * len(names)
    assert len(stack.builds()) == len(names)  # the new leader adopted every build, started none
    assert len(stack.expo.state.calls_of("createGitHubBuild")) == len(names)


async def test_a_clean_shutdown_hands_over_at_once(stack: Stack) -> None:
    import signal

    stack.apply_example_secrets()
    first = stack.operator(leader_election="true")
    await stack.until(lambda: "leads now" in first.logs(), what="the first replica to lead", timeout=30)
    second = stack.operator(leader_election="true")
    await stack.until(lambda: "standby until it leads" in second.logs(), what="the second replica to start")
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    assert "released the lease" in first.logs()
    # A released lease is free: the standby leads within a retry period, not a lease duration.
    await stack.until(lambda: "leads now" in second.logs(), what="the standby to take over", timeout=8)
    stack.apply(publishing_build("after-handover", submit=False))
    assert phase(await stack.wait_phase("after-handover", "Succeeded", timeout=60)) == "Succeeded"
