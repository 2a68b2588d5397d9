"""Status that means what it says (issue 9): observedGeneration follows every spec change, finished
or not; a retry after a cancel is not cancelled by the same request; "Validated" says what was
checked and what was not yet."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from publishing_operator import lifecycle as lc
from publishing_operator.api import (
    COND_CREDENTIALS,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
)
from publishing_operator.controller.worker import needs_work
from tests.fixtures.builders import spec

T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
UID = "0f1e2d3c-aaaa-bbbb-cccc-000000000009"


def ctx(generation: int) -> lc.Ctx:
    return lc.Ctx(uid=UID, generation=generation, now=T0)


def body(status: PublishingBuildStatus, generation: int) -> dict[str, Any]:
    label = lc.result_label(status.phase)
    return {
        "metadata": {
            "uid": UID,
            "generation": generation,
            "labels": {"publishing.dev/result": label} if label else {},
        },
        "status": status.to_json(),
    }


def building(s: PublishingBuildSpec, generation: int = 1) -> PublishingBuildStatus:
    status = lc.on_credentials(
        PublishingBuildStatus(), ok=True, reason=Reason.VALIDATED, message="ok", ctx=ctx(generation)
    ).status
    status = lc.on_slot_granted(s, status, ctx(generation)).status
    observed = lc.BuildObservation(id="b1", status="IN_PROGRESS")
    return lc.on_build_started(s, status, observed, adopted=False, ctx=ctx(generation)).status


def succeeded(s: PublishingBuildSpec) -> PublishingBuildStatus:
    finished = lc.BuildObservation(id="b1", status="FINISHED")
    status = lc.on_build_observed(s, building(s), finished, ctx(1)).status
    assert status.phase is Phase.SUCCEEDED
    return status


# -- (a) observedGeneration follows generation on every resource ------------------------------------


def test_cancel_on_a_succeeded_resource_is_acknowledged() -> None:
    done = succeeded(spec(submit=None))
    assert done.observed_generation == 1
    assert not needs_work(body(done, 1), done)

    # `kubectl patch ... {"spec":{"cancel":true}}`: generation 2. A worker must look at it ...
    assert needs_work(body(done, 2), done)
    assert lc.next_step(spec(submit=None, cancel=True), done, T0, generation=2) is lc.Step.NOTHING
    t = lc.on_spec_observed(spec(submit=None, cancel=True), done, ctx(2))
    # ... and acknowledge it: kstatus (Argo CD, Flux) reads observedGeneration == generation as
    # "the controller has seen this"; nothing else changes, and the user is told why.
    assert t.status.observed_generation == 2
    assert {c.observed_generation for c in t.status.conditions} == {2}
    assert t.status.phase is Phase.SUCCEEDED
    assert t.status.completion_time == done.completion_time
    assert [(e.reason, e.warning) for e in t.events] == [("CancelIgnored", False)]
    assert "already finished" in t.events[0].message
    assert not needs_work(body(t.status, 2), t.status)
    assert t.effects == lc.Effects()


def test_every_transition_stamps_the_generation_on_status_and_conditions() -> None:
    s = spec()
    status = building(s, generation=1)
    later = lc.on_build_observed(s, status, lc.BuildObservation(id="b1", status="IN_PROGRESS"), ctx(3))
    assert later.status.observed_generation == 3
    assert {c.observed_generation for c in later.status.conditions} == {3}
    assert lc.observed_generation_lags(status, 3)
    assert not lc.observed_generation_lags(later.status, 3)


# -- (b) a cancelled resource can be retried --------------------------------------------------------


def cancelled_by_request(generation: int = 2) -> tuple[PublishingBuildSpec, PublishingBuildStatus]:
    s = spec(cancel=True)
    running = building(spec(), generation=1)
    assert lc.next_step(s, running, T0, generation=generation) is lc.Step.CANCEL
    cancelling = lc.on_cancelling(s, running, ctx(generation)).status
    done = lc.on_build_observed(
        s, cancelling, lc.BuildObservation(id="b1", status="CANCELED"), ctx(generation)
    )
    assert done.status.phase is Phase.CANCELLED
    assert done.status.cancel_handled_generation == generation
    return s, done.status


def test_a_retry_after_a_cancel_is_not_cancelled_by_the_same_request() -> None:
    s, cancelled = cancelled_by_request(generation=2)
    retried = lc.on_manual_retry(s, cancelled, "again", ctx(2))
    assert retried.status.phase is Phase.PENDING
    # spec.cancel is still true (generation 2), but that request was honoured already.
    assert lc.next_step(s, retried.status, T0, generation=2) is lc.Step.CHECK_CREDENTIALS
    queued = lc.on_credentials(retried.status, ok=True, reason=Reason.VALIDATED, message="ok", ctx=ctx(2))
    assert lc.next_step(s, queued.status, T0, generation=2) is lc.Step.ACQUIRE_SLOT

    # To cancel the retried run: a new request, i.e. spec.cancel false (generation 3), then true (4).
    assert lc.next_step(spec(cancel=False), queued.status, T0, generation=3) is lc.Step.ACQUIRE_SLOT
    assert lc.next_step(s, queued.status, T0, generation=4) is lc.Step.FINISH_CANCELLED
    again = lc.on_nothing_to_cancel(s, queued.status, ctx(4))
    assert again.status.phase is Phase.CANCELLED
    assert again.status.cancel_handled_generation == 4


def test_a_retry_of_a_failed_resource_sets_aside_a_cancel_made_after_it_failed() -> None:
    s = spec(submit=None)
    failed = lc.on_build_observed(
        s, building(s), lc.BuildObservation(id="b1", status="ERRORED", error_code="X"), ctx(1)
    ).status
    assert failed.phase is Phase.FAILED
    cancel = spec(submit=None, cancel=True)  # set on the Failed resource: generation 2
    retried = lc.on_manual_retry(cancel, failed, "again", ctx(2))
    assert retried.status.phase is Phase.PENDING
    assert lc.next_step(cancel, retried.status, T0, generation=2) is lc.Step.CHECK_CREDENTIALS


def test_a_revert_of_spec_cancel_on_a_cancelled_resource_is_only_acknowledged() -> None:
    """An Argo CD self-heal may put spec.cancel back to false after a kubectl cancel."""
    _, cancelled = cancelled_by_request(generation=2)
    assert "as requested" in (cancelled.message or "")
    # The revert (generation 3) on the Cancelled resource only needs acknowledging.
    assert lc.next_step(spec(), cancelled, T0, generation=3) is lc.Step.NOTHING
    t = lc.on_spec_observed(spec(), cancelled, ctx(3))
    assert (t.status.phase, t.status.observed_generation, t.events) == (Phase.CANCELLED, 3, ())


# -- (c) "Validated" says what was checked, and what was not yet ------------------------------------


def test_validated_says_the_secrets_are_well_formed_and_expo_has_not_yet_accepted_the_token() -> None:
    missing = lc.on_credentials(
        PublishingBuildStatus(),
        ok=False,
        reason=Reason.SECRET_NOT_FOUND,
        message='Secret "expo-robot" not found',
        ctx=ctx(1),
    )
    fixed = lc.on_credentials(
        missing.status,
        ok=True,
        reason=Reason.VALIDATED,
        message="the referenced Secrets exist and hold well-formed credentials",
        ctx=ctx(1),
    )
    (event,) = fixed.events
    assert event.reason == Reason.VALIDATED
    assert "well-formed" in event.message
    assert "not yet" in event.message and "Expo" in event.message
    assert "valid now" not in event.message  # it did not check that
    # The condition stays true after the build started, so it says what it covers, timelessly.
    condition = fixed.status.condition(COND_CREDENTIALS)
    assert condition is not None
    assert "well-formed" in condition.message and "Expo" in condition.message
    assert "first EAS call" in condition.message
