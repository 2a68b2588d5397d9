"""The lifecycle state machine, driven with an explicit clock: every path of DESIGN.md section 3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from publishing_operator import lifecycle as lc
from publishing_operator.api import (
    COND_CREDENTIALS,
    COND_SUCCEEDED,
    SOURCE_NOT_ALLOWED_CODE,
    AttemptResult,
    ConditionStatus,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
)
from tests.fixtures.builders import spec

T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
UID = "0f1e2d3c-aaaa-bbbb-cccc-000000000001"


def ctx(at: datetime = T0, generation: int = 1) -> lc.Ctx:
    return lc.Ctx(uid=UID, generation=generation, now=at)


def cond(status: PublishingBuildStatus, type_: str = COND_SUCCEEDED) -> tuple[str, str]:
    c = status.condition(type_)
    assert c is not None
    return (c.status, c.reason)


def to_building(s: PublishingBuildSpec, at: datetime = T0) -> PublishingBuildStatus:
    status = PublishingBuildStatus()
    status = lc.on_credentials(status, ok=True, reason=Reason.VALIDATED, message="ok", ctx=ctx(at)).status
    return lc.on_slot_granted(s, status, ctx(at)).status


def observe(
    s: PublishingBuildSpec, status: PublishingBuildStatus, state: str, at: datetime = T0, **kw: Any
) -> lc.Transition:
    return lc.on_build_observed(s, status, lc.BuildObservation(id="b1", status=state, **kw), ctx(at))


def test_new_resource_checks_credentials_first() -> None:
    assert lc.next_step(spec(), PublishingBuildStatus(), T0) is lc.Step.CHECK_CREDENTIALS


def test_bad_credentials_keep_it_pending_with_a_reason_and_one_event() -> None:
    msg = 'Secret "asc-api-key" has no key "private-key"'
    t = lc.on_credentials(
        PublishingBuildStatus(), ok=False, reason=Reason.KEY_NOT_FOUND, message=msg, ctx=ctx(), recheck_at=T0
    )
    assert t.status.phase is Phase.PENDING
    assert cond(t.status, COND_CREDENTIALS) == (ConditionStatus.FALSE, Reason.KEY_NOT_FOUND)
    assert cond(t.status) == (ConditionStatus.UNKNOWN, Reason.CREDENTIALS_NOT_READY)
    assert [e.reason for e in t.events] == [Reason.KEY_NOT_FOUND]
    assert t.events[0].warning
    # Re-checking with the same problem posts no second Event.
    again = lc.on_credentials(
        t.status, ok=False, reason=Reason.KEY_NOT_FOUND, message=msg, ctx=ctx(T0 + timedelta(seconds=5))
    )
    assert again.events == ()
    # Fixing the Secret lets it go on, and says so.
    fixed = lc.on_credentials(again.status, ok=True, reason=Reason.VALIDATED, message="ok", ctx=ctx())
    assert fixed.status.phase is Phase.QUEUED
    assert cond(fixed.status, COND_CREDENTIALS) == (ConditionStatus.TRUE, Reason.VALIDATED)
    assert [e.reason for e in fixed.events] == [Reason.VALIDATED]


def test_rate_limited_then_granted_writes_the_request_key_before_any_eas_call() -> None:
    s = spec()
    queued = lc.on_credentials(
        PublishingBuildStatus(), ok=True, reason=Reason.VALIDATED, message="", ctx=ctx()
    )
    assert lc.next_step(s, queued.status, T0) is lc.Step.ACQUIRE_SLOT
    denied = lc.on_slot_denied(
        queued.status,
        reason=Reason.RATE_LIMITED,
        detail="5 builds started in the last 60s",
        retry_at=T0 + timedelta(seconds=42),
        ctx=ctx(),
    )
    assert denied.status.phase is Phase.QUEUED
    assert cond(denied.status) == (ConditionStatus.UNKNOWN, Reason.RATE_LIMITED)
    assert "12:00:42Z" in (denied.status.message or "")
    granted = lc.on_slot_granted(s, denied.status, ctx(T0 + timedelta(seconds=42)))
    assert granted.status.phase is Phase.BUILDING
    assert granted.status.build is not None
    assert granted.status.build.request_key == f"{UID}.1"
    assert granted.status.build.id is None
    assert granted.status.start_time == T0 + timedelta(seconds=42)
    assert lc.next_step(s, granted.status, T0) is lc.Step.START_BUILD


def test_credentials_and_the_start_slot_in_one_write_claim_with_the_finalizer_first() -> None:
    """The controller writes a credential check and the slot asked right after it as one transition
    (`then`): the second's status, both Events in order, every effect either wants."""
    fixed = PublishingBuildStatus(phase=Phase.PENDING)
    fixed.conditions = lc.set_condition(
        [], COND_CREDENTIALS, ConditionStatus.FALSE, Reason.KEY_NOT_FOUND, "no key", T0, 1
    )
    ready = lc.on_credentials(fixed, ok=True, reason=Reason.VALIDATED, message="ok", ctx=ctx())
    granted = lc.then(ready, lc.on_slot_granted(spec(), ready.status, ctx()))
    assert granted.status.phase is Phase.BUILDING
    assert granted.status.build is not None and granted.status.build.request_key == f"{UID}.1"
    assert cond(granted.status, COND_CREDENTIALS) == (ConditionStatus.TRUE, Reason.VALIDATED)
    assert granted.effects.guard_with_finalizer  # EAS work may exist from this write on
    assert [e.reason for e in granted.events] == [Reason.VALIDATED]
    denied = lc.then(
        ready,
        lc.on_slot_denied(ready.status, reason=Reason.RATE_LIMITED, detail="busy", retry_at=T0, ctx=ctx()),
    )
    assert (denied.status.phase, cond(denied.status)) == (
        Phase.QUEUED,
        (ConditionStatus.UNKNOWN, Reason.RATE_LIMITED),
    )
    assert [e.reason for e in denied.events] == [Reason.VALIDATED, Reason.RATE_LIMITED]
    assert denied.effects == lc.Effects()


def test_happy_path_with_submission_to_succeeded() -> None:
    s = spec()
    status = to_building(s)
    started = lc.on_build_started(
        s,
        status,
        lc.BuildObservation(id="b1", status="IN_QUEUE", queue_position=3, url="https://x/b1"),
        adopted=False,
        ctx=ctx(),
    )
    assert started.status.build is not None
    assert (started.status.build.id, started.status.build.queue_position) == ("b1", 3)
    assert cond(started.status) == (ConditionStatus.UNKNOWN, Reason.BUILD_QUEUED)
    assert [e.reason for e in started.events] == ["BuildStarted"]
    assert lc.next_step(s, started.status, T0) is lc.Step.POLL_BUILD

    running = observe(s, started.status, "IN_PROGRESS")
    assert cond(running.status) == (ConditionStatus.UNKNOWN, Reason.BUILD_IN_PROGRESS)
    assert running.status.build is not None and running.status.build.queue_position is None
    assert observe(s, running.status, "IN_PROGRESS").events == ()  # no Event when nothing changed

    finished = observe(s, running.status, "FINISHED", artifact_url="https://x/app.ipa")
    assert finished.status.phase is Phase.SUBMITTING
    assert finished.effects.release_slot
    assert finished.status.submission is not None
    # Every request claims a new number: the build was request 1, its submission is request 2.
    assert finished.status.submission.request_key == f"{UID}.2.submit"
    assert finished.status.request_count == 2
    assert finished.status.completion_time is None
    assert lc.next_step(s, finished.status, T0) is lc.Step.START_SUBMISSION

    sub = lc.on_submission_started(
        s, finished.status, lc.SubmissionObservation(id="s1", status="IN_QUEUE"), adopted=False, ctx=ctx()
    )
    assert lc.next_step(s, sub.status, T0) is lc.Step.POLL_SUBMISSION
    done_at = T0 + timedelta(minutes=20)
    done = lc.on_submission_observed(
        s, sub.status, lc.SubmissionObservation(id="s1", status="FINISHED"), ctx(done_at)
    )
    assert done.status.phase is Phase.SUCCEEDED
    assert cond(done.status) == (ConditionStatus.TRUE, Reason.SUCCEEDED)
    assert done.status.completion_time == done_at
    assert [h.result for h in done.status.history] == [AttemptResult.SUCCEEDED]
    assert lc.result_label(done.status.phase) == "succeeded"
    assert lc.next_step(s, done.status, done_at) is lc.Step.NOTHING


def test_build_only_succeeds_without_submission() -> None:
    s = spec(submit=None)
    done = observe(s, to_building(s), "FINISHED")
    assert done.status.phase is Phase.SUCCEEDED
    assert done.status.submission is None


def test_user_error_fails_at_once_with_the_error_code() -> None:
    s = spec()
    failed = observe(
        s, to_building(s), "ERRORED", error_code="EAS_BUILD_UNKNOWN_GRADLE_ERROR", error_message="x"
    )
    assert failed.status.phase is Phase.FAILED
    assert cond(failed.status) == (ConditionStatus.FALSE, Reason.BUILD_FAILED)
    assert "EAS_BUILD_UNKNOWN_GRADLE_ERROR" in (failed.status.message or "")
    assert (
        failed.status.build is not None and failed.status.build.error_code == "EAS_BUILD_UNKNOWN_GRADLE_ERROR"
    )
    assert any(e.warning and "EAS_BUILD_UNKNOWN_GRADLE_ERROR" in e.message for e in failed.events)


def test_eas_refusing_the_build_fails_at_once_as_build_failed() -> None:
    failed = lc.on_build_rejected(
        to_building(spec()), error_code="ENTITY_NOT_FOUND", message="no app", ctx=ctx()
    )
    assert failed.status.phase is Phase.FAILED
    assert cond(failed.status) == (ConditionStatus.FALSE, Reason.BUILD_FAILED)
    assert failed.status.message == "EAS refused the build: ENTITY_NOT_FOUND: no app"
    assert failed.effects.release_slot


def test_source_refused_by_the_archive_policy_fails_with_its_own_reason_and_text() -> None:
    text = "spec.source.archive.url is refused by the operator's archive source policy: ..."
    failed = lc.on_build_rejected(
        to_building(spec()), error_code=SOURCE_NOT_ALLOWED_CODE, message=text, ctx=ctx()
    )
    assert failed.status.phase is Phase.FAILED
    assert cond(failed.status) == (ConditionStatus.FALSE, Reason.SOURCE_NOT_ALLOWED)
    assert failed.status.message == text  # the policy's text alone: EAS never saw this build
    assert failed.status.build is not None and failed.status.build.error_code is None
    assert [h.reason for h in failed.status.history] == [Reason.SOURCE_NOT_ALLOWED]
    assert [(e.reason, e.message, e.warning) for e in failed.events] == [("SourceNotAllowed", text, True)]
    assert failed.effects.release_slot
    assert lc.result_label(failed.status.phase) == "failed"


def test_infra_errors_retry_with_backoff_then_exhaust() -> None:
    s = spec()  # 3 attempts, 2s initial, factor 2
    status = to_building(s)
    gaps = []
    for attempt in (1, 2):
        t = observe(s, status, "ERRORED", error_code="UNKNOWN_ERROR")
        assert t.status.phase is Phase.QUEUED
        assert cond(t.status) == (ConditionStatus.UNKNOWN, Reason.RETRY_BACKOFF)
        assert t.status.attempt == attempt + 1
        assert t.status.next_retry_time is not None
        gaps.append(t.status.next_retry_time - T0)
        assert lc.next_step(s, t.status, T0) is lc.Step.WAIT_RETRY
        assert lc.next_step(s, t.status, t.status.next_retry_time) is lc.Step.ACQUIRE_SLOT
        status = lc.on_slot_granted(s, t.status, ctx()).status
        assert status.build is not None and status.build.request_key == f"{UID}.{attempt + 1}"
    assert gaps == [timedelta(seconds=2), timedelta(seconds=4)]
    last = observe(s, status, "ERRORED", error_code="UNKNOWN_ERROR")
    assert last.status.phase is Phase.FAILED
    assert cond(last.status) == (ConditionStatus.FALSE, Reason.RETRIES_EXHAUSTED)
    assert [h.attempt for h in last.status.history] == [1, 2, 3]


def test_failed_submission_retries_the_submission_not_the_build() -> None:
    s = spec()
    submitting = observe(s, to_building(s), "FINISHED").status
    sub = lc.on_submission_started(
        s, submitting, lc.SubmissionObservation(id="s1", status="IN_PROGRESS"), adopted=False, ctx=ctx()
    ).status
    t = lc.on_submission_observed(
        s, sub, lc.SubmissionObservation(id="s1", status="ERRORED", error_code="X"), ctx()
    )
    assert t.status.phase is Phase.SUBMITTING
    assert t.status.build is not None and t.status.build.id == "b1"
    assert t.status.submission is not None
    assert t.status.submission.id is None
    # The retry's request key is claimed when the backoff is over, right before the create.
    assert t.status.submission.request_key is None
    assert lc.next_step(s, t.status, T0) is lc.Step.WAIT_RETRY
    assert t.status.next_retry_time is not None
    assert lc.next_step(s, t.status, t.status.next_retry_time) is lc.Step.CLAIM_SUBMISSION
    claimed = lc.on_claimed(t.status, "submission", "submission attempt 2", ctx(t.status.next_retry_time))
    assert claimed.status.submission is not None
    assert claimed.status.submission.request_key == f"{UID}.3.submit"
    assert claimed.status.submission.requested_at == t.status.next_retry_time
    assert lc.next_step(s, claimed.status, t.status.next_retry_time) is lc.Step.START_SUBMISSION


def test_cancel_in_flight_goes_through_cancelling_to_cancelled() -> None:
    s = spec(cancel=True)
    building = lc.on_build_started(
        s, to_building(s), lc.BuildObservation(id="b1", status="IN_PROGRESS"), adopted=False, ctx=ctx()
    ).status
    assert lc.next_step(s, building, T0) is lc.Step.CANCEL
    cancelling = lc.on_cancelling(s, building, ctx())
    assert cond(cancelling.status) == (ConditionStatus.UNKNOWN, Reason.CANCELLING)
    assert lc.on_cancelling(s, cancelling.status, ctx()).events == ()
    pending = observe(s, cancelling.status, "PENDING_CANCEL")
    assert cond(pending.status) == (ConditionStatus.UNKNOWN, Reason.CANCELLING)
    done = observe(s, pending.status, "CANCELED")
    assert done.status.phase is Phase.CANCELLED
    assert cond(done.status) == (ConditionStatus.FALSE, Reason.CANCELLED)
    assert done.effects.release_slot


def test_cancel_before_anything_started_finishes_at_once() -> None:
    s = spec(cancel=True)
    queued = lc.on_credentials(
        PublishingBuildStatus(), ok=True, reason=Reason.VALIDATED, message="", ctx=ctx()
    )
    assert lc.next_step(s, queued.status, T0) is lc.Step.FINISH_CANCELLED
    done = lc.on_nothing_to_cancel(s, queued.status, ctx())
    assert done.status.phase is Phase.CANCELLED
    assert done.status.completion_time == T0


def test_build_timeout_cancels_then_fails_with_timeout() -> None:
    s = spec(timeouts={"build": "10m", "submit": "5m"})
    building = lc.on_build_started(
        s, to_building(s), lc.BuildObservation(id="b1", status="IN_PROGRESS"), adopted=False, ctx=ctx()
    ).status
    assert lc.next_step(s, building, T0 + timedelta(minutes=9)) is lc.Step.POLL_BUILD
    late = T0 + timedelta(minutes=11)
    assert lc.next_step(s, building, late) is lc.Step.CANCEL
    done = observe(s, building, "CANCELED", at=late)
    assert done.status.phase is Phase.FAILED
    assert cond(done.status) == (ConditionStatus.FALSE, Reason.TIMEOUT)


def test_build_cancelled_outside_the_operator() -> None:
    s = spec()
    done = observe(s, to_building(s), "CANCELED")
    assert done.status.phase is Phase.CANCELLED
    assert "outside" in (done.status.message or "")


def test_unauthorized_returns_to_pending_without_using_an_attempt() -> None:
    s = spec()
    queued = lc.on_credentials(
        PublishingBuildStatus(), ok=True, reason=Reason.VALIDATED, message="", ctx=ctx()
    )
    t = lc.on_unauthorized(queued.status, "expo-robot", ctx())
    assert t.status.phase is Phase.PENDING
    assert cond(t.status, COND_CREDENTIALS) == (ConditionStatus.FALSE, Reason.UNAUTHORIZED)
    assert t.status.attempt == 1
    assert lc.next_step(s, t.status, T0) is lc.Step.CHECK_CREDENTIALS


def test_manual_retry_starts_a_fresh_budget() -> None:
    s = spec(submit=None)
    failed = observe(s, to_building(s), "ERRORED", error_code="EAS_BUILD_UNKNOWN_GRADLE_ERROR").status
    t = lc.on_manual_retry(s, failed, "2026-11-27", ctx())
    assert t.status.phase is Phase.PENDING
    assert t.status.retry_request == "2026-11-27"
    assert (t.status.attempt, t.status.build, t.status.completion_time) == (1, None, None)
    assert len(t.status.history) == 1  # earlier attempts stay on record


def test_condition_transition_time_moves_only_when_status_changes() -> None:
    s = spec()
    status = to_building(s)
    first = status.condition(COND_SUCCEEDED)
    later = observe(s, status, "IN_PROGRESS", at=T0 + timedelta(minutes=1)).status.condition(COND_SUCCEEDED)
    assert first is not None and later is not None
    assert later.reason != first.reason
    assert later.last_transition_time == first.last_transition_time


def test_history_is_bounded() -> None:
    s = spec(retry={"maxAttempts": 10})
    status = to_building(s)
    for _ in range(9):
        status = lc.on_slot_granted(
            s, observe(s, status, "ERRORED", error_code="UNKNOWN_ERROR").status, ctx()
        ).status
    final = observe(s, status, "ERRORED", error_code="UNKNOWN_ERROR").status
    assert len(final.history) == 10
    assert final.history[-1].reason == Reason.RETRIES_EXHAUSTED


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED])
def test_finished_resources_have_nothing_to_do(phase: Phase) -> None:
    assert lc.next_step(spec(cancel=True), PublishingBuildStatus(phase=phase), T0) is lc.Step.NOTHING


def test_status_round_trips_through_the_wire_shape() -> None:
    s = spec()
    status = observe(s, to_building(s), "IN_QUEUE", queue_position=2, estimated_wait_seconds=90).status
    wire = status.to_json()
    assert wire["build"]["requestKey"] == f"{UID}.1"
    assert wire["build"]["queuePosition"] == 2
    assert wire["conditions"][0]["lastTransitionTime"].endswith("Z")
    assert PublishingBuildStatus.model_validate(wire) == status


def test_step_trouble_is_told_without_changing_phase_or_attempt() -> None:
    s = spec()
    building = to_building(s)
    t = lc.on_step_trouble(building, "downloading the project archive failed: ConnectError", ctx())
    assert t.status.phase is Phase.BUILDING
    assert t.status.attempt == building.attempt
    assert t.status.condition(COND_SUCCEEDED) == building.condition(COND_SUCCEEDED)
    assert "ConnectError" in (t.status.message or "")
    assert "no attempt used" in (t.status.message or "")
    assert [e.reason for e in t.events] == ["Retrying"]
    assert t.events[0].warning


def test_a_skipped_release_builds_after_a_manual_retry() -> None:
    """AlreadyReleased (the release ledger matched) is Succeeded, but the retry annotation is how a
    person says "build it anyway": it starts a fresh attempt budget."""
    skipped = lc.on_already_released(
        PublishingBuildStatus(), build_id="b-old", completed_at="2026-11-01T10:00:00Z", ctx=ctx()
    )
    assert skipped.status.phase is Phase.SUCCEEDED and skipped.effects.finished
    assert cond(skipped.status) == (ConditionStatus.TRUE, Reason.ALREADY_RELEASED)
    assert "b-old" in (skipped.status.message or "") and "publishing.dev/retry" in (
        skipped.status.message or ""
    )
    again = lc.on_manual_retry(spec(), skipped.status, "build-anyway", ctx())
    assert again.status.phase is Phase.PENDING and again.effects.clear_result_label
    succeeded = lc.on_submission_observed(
        spec(), to_building(spec()), lc.SubmissionObservation(id="s", status="FINISHED"), ctx()
    )
    ignored = lc.on_manual_retry(spec(), succeeded.status, "no", ctx())
    assert ignored.status.phase is Phase.SUCCEEDED and [e.reason for e in ignored.events] == ["RetryIgnored"]


def test_no_transition_changes_the_status_it_was_given() -> None:
    """The controller keeps a parsed status per resourceVersion and hands the same object to every
    step of that version: a transition works on a copy (build and submission are changed in place
    in the copy, lists only replaced)."""
    s = spec()
    queued = lc.on_credentials(
        PublishingBuildStatus(), ok=True, reason=Reason.VALIDATED, message="", ctx=ctx()
    )
    claimed = lc.on_slot_granted(s, queued.status, ctx())
    later = ctx(T0 + timedelta(seconds=30))
    receipt = lc.on_receipt(claimed.status, "r1", ctx())
    steps: list[tuple[PublishingBuildStatus, Any]] = [
        (queued.status, lambda st: lc.on_slot_granted(s, st, ctx())),
        (claimed.status, lambda st: lc.on_receipt(st, "r1", ctx())),
        (claimed.status, lambda st: lc.on_claim_renewed(st, "build", later)),
        (receipt.status, lambda st: lc.on_build_rejected(st, error_code="X", message="no", ctx=ctx())),
        (receipt.status, lambda st: observe(s, st, "FINISHED")),
    ]
    submitting = observe(s, receipt.status, "FINISHED").status
    steps += [
        (submitting, lambda st: lc.on_claim_renewed(st, "submission", later)),
        (submitting, lambda st: lc.on_submission_rejected(s, st, error_code="X", message="no", ctx=ctx())),
        (
            submitting,
            lambda st: lc.on_submission_started(
                s, st, lc.SubmissionObservation(id="s1", status="FINISHED"), adopted=False, ctx=ctx()
            ),
        ),
        (submitting, lambda st: lc.on_unauthorized(st, "expo-robot", ctx(), nothing_sent=True)),
    ]
    for status, transition in steps:
        before = status.model_dump()
        after = transition(status)
        assert status.model_dump() == before
        assert after.status is not status
