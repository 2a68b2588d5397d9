"""Issue 6: retries and backoff, error classes, circuit breaker, cancel, delete, timeouts, manual
retry and graceful shutdown — the real operator against the emulator and the Expo simulator."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
import yaml

from tests.fixtures.operator import EXAMPLE_TOKEN, Stack, condition, parse_time, phase, publishing_build

pytestmark = pytest.mark.integration


REVOKED = "expo-token-3c2b1a09f8e7d6c5"


def reason(obj: dict[str, Any] | None) -> str | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Succeeded":
            return str(cond.get("reason"))
    return None


def build_id(obj: dict[str, Any] | None) -> str | None:
    return (((obj or {}).get("status") or {}).get("build") or {}).get("id")


def events_for(stack: Stack, name: str) -> list[dict[str, Any]]:
    items = yaml.safe_load(stack.kube.kubectl("get", "events", "-o", "yaml").stdout)["items"]
    return [e for e in items if e["involvedObject"]["name"] == name]


async def test_infra_errors_retry_with_backoff_until_attempt_three_succeeds(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.fault(outcomes=[{"target": "build", "count": 2, "error_code": "UNKNOWN_ERROR"}])
    stack.apply(
        publishing_build("flaky", submit=False, retry={"maxAttempts": 3, "backoff": {"initial": "2s"}})
    )
    stack.operator()
    done = await stack.wait_phase("flaky", "Succeeded", "Failed", timeout=120)
    assert phase(done) == "Succeeded", done["status"]
    status = done["status"]
    assert status["attempt"] == 3
    builds = stack.builds()
    assert len(builds) == 3
    assert [b["message"].rsplit(".", 1)[1] for b in builds] == ["1", "2", "3"]
    assert [h["result"] for h in status["history"]] == ["Failed", "Failed", "Succeeded"]
    # Gaps between a failed build's end and the next build's creation follow 2 s, 4 s.
    for failed, following, backoff in ((builds[0], builds[1], 2.0), (builds[1], builds[2], 4.0)):
        gap = (parse_time(following["createdAt"]) - parse_time(failed["completedAt"])).total_seconds()
        assert backoff <= gap < backoff + 6.0, (backoff, gap)
    assert {"Retrying", "Succeeded"} <= {e["reason"] for e in events_for(stack, "flaky")}


async def test_user_error_fails_after_exactly_one_build(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.fault(
        outcomes=[{"target": "build", "error_code": "EAS_BUILD_UNKNOWN_GRADLE_ERROR", "message": "boom"}]
    )
    stack.apply(publishing_build("compile-error", platform="android"))
    stack.operator()
    done = await stack.wait_phase("compile-error", "Succeeded", "Failed", timeout=90)
    assert (phase(done), reason(done)) == ("Failed", "BuildFailed")
    assert done["status"]["build"]["errorCode"] == "EAS_BUILD_UNKNOWN_GRADLE_ERROR"
    assert "EAS_BUILD_UNKNOWN_GRADLE_ERROR" in done["status"]["message"]
    assert len(stack.builds()) == 1 and stack.submissions() == []
    await stack.wait(
        "compile-error", lambda o: o["metadata"].get("labels", {}).get("publishing.dev/result") == "failed"
    )
    warnings = [e for e in events_for(stack, "compile-error") if e["type"] == "Warning"]
    assert any("EAS_BUILD_UNKNOWN_GRADLE_ERROR" in e["message"] for e in warnings)
    listed = stack.kube.kubectl("get", "pb", "-l", "publishing.dev/result=failed", "-o", "name").stdout
    assert listed.strip() == "publishingbuild.publishing.dev/compile-error"


async def test_submission_error_retries_the_submission_not_the_build(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.fault(outcomes=[{"target": "submission", "error_code": "SUBMISSION_SERVICE_ERROR"}])
    stack.apply(publishing_build("resubmit", retry={"maxAttempts": 3, "backoff": {"initial": "1s"}}))
    stack.operator()
    done = await stack.wait_phase("resubmit", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded", done["status"]
    assert len(stack.builds()) == 1
    submissions = stack.submissions()
    assert [s["status"] for s in submissions] == ["ERRORED", "FINISHED"]
    assert {s["buildId"] for s in submissions} == {done["status"]["build"]["id"]}
    assert done["status"]["submission"]["id"] == submissions[1]["id"]


async def test_circuit_opens_on_repeated_503s_and_no_attempt_is_consumed(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 1200.0})  # ~6 s: in flight while Expo fails
    stack.apply(publishing_build("in-flight", submit=False))
    stack.operator(circuit_threshold="3", circuit_open_for="60s")
    await stack.wait("in-flight", lambda o: build_id(o) is not None)

    # Expo starts failing: polls of the build in flight fail until the circuit opens.
    stack.fault(calls=[{"operation": "*", "count": 20, "http_status": 503}])
    await stack.until(lambda: "circuit is open" in stack.operator_logs(), what="the circuit to open")
    stack.apply(publishing_build("newcomer", submit=False))
    waiting = await stack.wait("newcomer", lambda o: reason(o) == "ExpoUnavailable", timeout=60)
    assert phase(waiting) == "Queued"
    assert "Expo" in waiting["status"]["message"]
    assert len(stack.builds()) == 1, "nothing new starts while the circuit is open"

    for name in ("in-flight", "newcomer"):
        done = await stack.wait_phase(name, "Succeeded", "Failed", timeout=120)
        assert phase(done) == "Succeeded"
        assert done["status"]["attempt"] == 1, "transient API errors use no attempts"
    assert len(stack.builds()) == 2
    assert sum(1 for c in stack.expo.state.calls if c.http_status == 503) == 20


async def test_retry_after_is_honoured(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 800.0})
    stack.apply(publishing_build("slow-down", submit=False))
    stack.operator()
    await stack.wait("slow-down", lambda o: build_id(o) is not None)
    stack.fault(calls=[{"operation": "byId", "count": 1, "http_status": 429, "retry_after": 2.0}])
    await stack.until(lambda: any(c.http_status == 429 for c in stack.expo.state.calls), what="the 429")
    done = await stack.wait_phase("slow-down", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"
    calls = stack.expo.state.calls
    limited = next(i for i, c in enumerate(calls) if c.http_status == 429)
    after = calls[limited + 1]
    assert after.time - calls[limited].time >= 2.0


async def test_cancel_while_queued(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 2000.0})
    stack.apply(publishing_build("first", submit=False))
    stack.operator(start_rate="1/600s")
    await stack.wait("first", lambda o: build_id(o) is not None)
    stack.apply(publishing_build("second", submit=False))
    await stack.wait("second", lambda o: reason(o) == "RateLimited")
    stack.kube.kubectl("patch", "pb", "second", "--type=merge", "-p", '{"spec":{"cancel":true}}')
    done = await stack.wait_phase("second", "Cancelled", timeout=30)
    assert reason(done) == "Cancelled"
    assert len(stack.builds()) == 1


async def test_cancel_while_building(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 4000.0, "queue_seconds": 0.0})
    stack.apply(publishing_build("stop-building"))
    stack.operator()
    await stack.wait("stop-building", lambda o: reason(o) == "BuildInProgress")
    stack.kube.kubectl("patch", "pb", "stop-building", "--type=merge", "-p", '{"spec":{"cancel":true}}')
    done = await stack.wait_phase("stop-building", "Cancelled", timeout=30)
    (build,) = stack.builds()
    assert build["status"] == "CANCELED"
    assert stack.submissions() == []
    assert {"Cancelling", "Cancelled"} <= {e["reason"] for e in events_for(stack, "stop-building")}
    assert done["status"]["completionTime"]
    assert done["status"]["cancelHandledGeneration"] == done["metadata"]["generation"] == 2


async def test_a_cancelled_resource_is_retried_and_its_retry_cancelled_again(stack: Stack) -> None:
    """Issue 9: the retry annotation works on a resource cancelled with spec.cancel (the request
    that ended the first run does not end the retried one); false, then true, cancels the retry."""
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 4000.0, "queue_seconds": 0.0})
    stack.apply(publishing_build("cancel-retry", submit=False))
    stack.operator()
    await stack.wait("cancel-retry", lambda o: reason(o) == "BuildInProgress")
    patch = ("patch", "pb", "cancel-retry", "--type=merge", "-p")
    stack.kube.kubectl(*patch, '{"spec":{"cancel":true}}')
    await stack.wait_phase("cancel-retry", "Cancelled", timeout=30)

    stack.kube.kubectl("annotate", "pb", "cancel-retry", "publishing.dev/retry=1")
    retried = await stack.wait(
        "cancel-retry",
        lambda o: reason(o) == "BuildInProgress" and o["status"].get("retryRequest") == "1",
        timeout=60,
    )
    assert retried["spec"]["cancel"] is True
    assert len(stack.builds()) == 2 and stack.builds()[1]["status"] != "CANCELED"

    stack.kube.kubectl(*patch, '{"spec":{"cancel":false}}')
    stack.kube.kubectl(*patch, '{"spec":{"cancel":true}}')
    done = await stack.wait_phase("cancel-retry", "Cancelled", timeout=30)
    assert [b["status"] for b in stack.builds()] == ["CANCELED", "CANCELED"]
    assert done["status"]["cancelHandledGeneration"] == done["metadata"]["generation"] == 4
    assert [h["result"] for h in done["status"]["history"]] == ["Cancelled", "Cancelled"]


async def test_cancel_on_a_succeeded_resource_is_acknowledged(stack: Stack) -> None:
    """Issue 9: observedGeneration follows generation on a finished resource too (kstatus tools
    such as Argo CD and Flux would otherwise report it as progressing for ever)."""
    stack.apply_example_secrets()
    stack.apply(publishing_build("finished-first", platform="android", submit=False))
    stack.operator()
    done = await stack.wait_phase("finished-first", "Succeeded", timeout=60)
    assert done["status"]["observedGeneration"] == 1
    stack.kube.kubectl("patch", "pb", "finished-first", "--type=merge", "-p", '{"spec":{"cancel":true}}')
    seen = await stack.wait(
        "finished-first", lambda o: o["status"].get("observedGeneration") == 2, timeout=30
    )
    assert phase(seen) == "Succeeded" and seen["metadata"]["generation"] == 2
    assert {c["observedGeneration"] for c in seen["status"]["conditions"]} == {2}
    assert seen["status"]["completionTime"] == done["status"]["completionTime"]
    assert "CancelIgnored" in {e["reason"] for e in events_for(stack, "finished-first")}
    assert len(stack.builds()) == 1


async def test_cancel_while_submitting(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"submit_seconds": 4000.0})
    stack.apply(publishing_build("stop-submitting"))
    stack.operator()
    await stack.wait(
        "stop-submitting", lambda o: ((o.get("status") or {}).get("submission") or {}).get("id") is not None
    )
    stack.kube.kubectl("patch", "pb", "stop-submitting", "--type=merge", "-p", '{"spec":{"cancel":true}}')
    await stack.wait_phase("stop-submitting", "Cancelled", timeout=30)
    (submission,) = stack.submissions()
    assert submission["status"] == "CANCELED"
    assert stack.builds()[0]["status"] == "FINISHED"


async def test_delete_while_building_cancels_on_eas_first(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 4000.0})
    stack.apply(publishing_build("delete-me"))
    stack.operator()
    building = await stack.wait("delete-me", lambda o: build_id(o) is not None)
    assert "publishing.dev/eas-work" in building["metadata"]["finalizers"]
    stack.kube.kubectl("delete", "pb", "delete-me", "--timeout=60s")
    await stack.wait_gone("delete-me")
    (build,) = stack.builds()
    assert build["status"] == "CANCELED"


async def test_delete_with_the_operator_stopped_completes_once_it_is_back(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 4000.0})
    stack.apply(publishing_build("orphan"))
    operator = stack.operator()
    await stack.wait("orphan", lambda o: build_id(o) is not None)
    operator.kill()
    stack.kube.kubectl("delete", "pb", "orphan", "--wait=false")
    held = await stack.get("orphan")
    assert held is not None and held["metadata"].get("deletionTimestamp"), "EAS work in flight holds it"
    stack.operator()
    await stack.wait_gone("orphan", timeout=60)
    assert stack.builds()[0]["status"] == "CANCELED"


async def test_deleting_a_finished_resource_is_immediate(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.apply(publishing_build("finished", submit=False))
    operator = stack.operator()
    await stack.wait(
        "finished",
        lambda o: (
            phase(o) == "Succeeded"
            and "publishing.dev/eas-work" not in (o["metadata"].get("finalizers") or [])
        ),
    )
    operator.kill()
    stack.kube.kubectl("delete", "pb", "finished", "--timeout=10s")
    assert await stack.get("finished") is None


async def test_build_timeout_fails_and_cancels_the_build(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 4000.0})
    stack.apply(publishing_build("too-slow", timeouts={"build": "3s", "submit": "1h"}))
    stack.operator()
    done = await stack.wait_phase("too-slow", "Failed", "Succeeded", "Cancelled", timeout=60)
    assert (phase(done), reason(done)) == ("Failed", "Timeout")
    assert stack.builds()[0]["status"] == "CANCELED"


async def test_manual_retry_of_a_failed_resource(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.fault(outcomes=[{"target": "build", "error_code": "EAS_BUILD_UNKNOWN_GRADLE_ERROR"}])
    stack.apply(publishing_build("again", submit=False))
    stack.operator()
    await stack.wait_phase("again", "Failed", timeout=60)
    stack.kube.kubectl("annotate", "pb", "again", "publishing.dev/retry=1")
    done = await stack.wait(
        "again", lambda o: phase(o) == "Succeeded" and o["status"].get("retryRequest") == "1", timeout=60
    )
    assert len(stack.builds()) == 2
    assert [h["result"] for h in done["status"]["history"]] == ["Failed", "Succeeded"]
    # The same value again changes nothing; on a running or succeeded resource it is ignored.
    stack.kube.kubectl("annotate", "--overwrite", "pb", "again", "publishing.dev/retry=2")
    await stack.wait("again", lambda o: o["status"].get("retryRequest") == "2")
    assert phase(await stack.get("again")) == "Succeeded"
    assert any(e["reason"] == "RetryIgnored" for e in events_for(stack, "again"))
    assert len(stack.builds()) == 2


async def test_sigterm_during_submission_exits_cleanly_and_resumes(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"submit_seconds": 1500.0})  # ~7.5 s
    stack.apply(publishing_build("graceful"))
    operator = stack.operator(shutdown_grace="5s")
    await stack.wait(
        "graceful", lambda o: ((o.get("status") or {}).get("submission") or {}).get("id") is not None
    )
    started = time.monotonic()
    operator.signal(signal.SIGTERM)
    assert operator.wait(timeout=30) == 0
    assert time.monotonic() - started < 15
    assert "resumed from status at the next start" in operator.logs()

    stack.operator()
    done = await stack.wait_phase("graceful", "Succeeded", "Failed", timeout=60)
    assert phase(done) == "Succeeded"
    assert len(stack.builds()) == 1 and len(stack.submissions()) == 1


async def test_a_revoked_token_is_reported_well_formed_not_valid(stack: Stack) -> None:
    """Issue 9: a Secret created late with a revoked token. The operator can only see that it is
    well-formed; the Events must not call it valid before Expo refuses it."""
    stack.apply_example_secrets()
    stack.apply(publishing_build("late-token", expo={"tokenSecretRef": {"name": "late"}}))
    stack.operator()
    await stack.wait(
        "late-token",
        lambda o: (
            condition(o, "CredentialsReady")["reason"] == "SecretNotFound"
            if (o.get("status") or {}).get("conditions")
            else False
        ),
    )
    stack.kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "late", "namespace": "default"},
                "stringData": {"token": REVOKED},
            }
        ]
    )
    await stack.wait("late-token", lambda o: condition(o, "CredentialsReady")["reason"] == "Unauthorized")
    events = {e["reason"]: e for e in events_for(stack, "late-token")}
    validated = events["Validated"]
    assert validated["type"] == "Normal"
    assert "well-formed" in validated["message"] and "not yet" in validated["message"]
    assert "valid now" not in validated["message"]
    assert events["Unauthorized"]["type"] == "Warning"
    assert stack.builds() == []


async def test_unauthorized_token_goes_back_to_pending_without_using_attempts(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "revoked", "namespace": "default"},
                "stringData": {"token": REVOKED},
            }
        ]
    )
    stack.apply(publishing_build("revoked-token", expo={"tokenSecretRef": {"name": "revoked"}}))
    stack.operator()
    pending = await stack.wait(
        "revoked-token",
        lambda o: (
            reason(o) == "CredentialsNotReady"
            and phase(o) == "Pending"
            and condition(o, "CredentialsReady")["reason"] == "Unauthorized"
        ),
    )
    assert pending["status"].get("attempt", 1) == 1
    assert stack.builds() == []
    for text in (str(pending["status"]), str(events_for(stack, "revoked-token")), stack.operator_logs()):
        assert REVOKED not in text

    # A new token in the same Secret lets it go on; the refusal was reported once.
    stack.kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "revoked", "namespace": "default"},
                "stringData": {"token": EXAMPLE_TOKEN},
            }
        ]
    )
    done = await stack.wait_phase("revoked-token", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"
    assert done["status"]["attempt"] == 1
    assert len(stack.builds()) == 1
    refusals = [e for e in events_for(stack, "revoked-token") if e["reason"] == "Unauthorized"]
    assert len(refusals) == 1 and refusals[0].get("count", 1) == 1
