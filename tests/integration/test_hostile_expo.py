"""Issue 15: a hostile Expo end to end (the simulator changes its answers): unknown states, malformed
JSON, huge error messages, odd numbers. The resource says what is wrong, keeps going when it can,
ends when its timeout says so, and the operator logs no traceback."""

from __future__ import annotations

import pytest

from tests.fixtures.operator import Stack, condition, phase, publishing_build

pytestmark = pytest.mark.integration


def both(field: str, value: object) -> dict[str, object]:
    """A build's field in a poll's answer, alone (BuildById) or coalesced (BuildsById, alias b0)."""
    return {f"builds.byId.{field}": value, f"b0.byId.{field}": value}


def message(obj: dict[str, object]) -> str:
    return str((obj.get("status") or {}).get("message") or "")  # type: ignore[union-attr]


async def test_an_unknown_build_state_is_followed_and_said(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.fault(calls=[{"operation": "builds", "count": 6, "rewrite": both("status", "AWAITING_RETRY")}])
    stack.apply(publishing_build("new-state", submit=False))
    stack.operator()
    said = await stack.wait("new-state", lambda o: "AWAITING_RETRY" in message(o), timeout=60)
    assert "a state this operator does not know" in message(said)
    assert said["status"]["build"]["status"] == "AWAITING_RETRY"
    done = await stack.wait_phase("new-state", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"
    assert "Traceback" not in stack.operator_logs()


async def test_an_unknown_submission_state_is_followed_and_said(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.fault(
        calls=[
            {"operation": "SubmissionById", "count": 4, "rewrite": {"submissions.byId.status": "IN_REVIEW"}}
        ]
    )
    stack.apply(publishing_build("new-submission-state"))
    stack.operator()
    await stack.wait("new-submission-state", lambda o: "IN_REVIEW" in message(o), timeout=60)
    done = await stack.wait_phase("new-submission-state", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"


async def test_a_build_stuck_in_an_unknown_state_ends_with_its_timeout(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 4000.0})  # 20 s: the timeout comes first
    stack.fault(calls=[{"operation": "builds", "count": 1000, "rewrite": both("status", "AWAITING_RETRY")}])
    stack.apply(publishing_build("stuck-state", submit=False, timeouts={"build": "4s"}))
    stack.operator()
    done = await stack.wait_phase("stuck-state", "Succeeded", "Failed", "Cancelled", timeout=90)
    assert (phase(done), condition(done, "Succeeded")["reason"]) == ("Failed", "Timeout")
    assert "Traceback" not in stack.operator_logs()


async def test_a_huge_error_message_fits_the_status(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.fault(
        outcomes=[{"target": "build", "error_code": "EAS_BUILD_UNKNOWN_GRADLE_ERROR", "message": "x" * 20000}]
    )
    stack.apply(publishing_build("long-error", submit=False))
    stack.operator()
    done = await stack.wait_phase("long-error", "Succeeded", "Failed", timeout=90)
    assert (phase(done), condition(done, "Succeeded")["reason"]) == ("Failed", "BuildFailed")
    assert 0 < len(done["status"]["build"]["errorMessage"]) <= 2000
    assert len(message(done)) <= 4096


async def test_malformed_and_odd_answers_are_typed_errors_then_it_goes_on(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.fault(
        calls=[
            {"operation": "builds", "count": 4, "body": "{"},
            {
                "operation": "builds",
                "count": 2,
                "body": '{"data": {"builds": {"byId": [1, 2]}, "b0": {"byId": [1]}}}',
            },
            {"operation": "builds", "count": 2, "rewrite": both("queuePosition", -5)},
        ]
    )
    stack.apply(publishing_build("odd-answers", submit=False))
    stack.operator()
    said = await stack.wait(
        "odd-answers", lambda o: "unexpected shape" in message(o) or "without data" in message(o), timeout=60
    )
    assert "retrying" in message(said)
    done = await stack.wait_phase("odd-answers", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"
    assert "Traceback" not in stack.operator_logs()
