"""Durations at their limits: parsed as Go parses them (the API server's CEL does), ceilings a user can
defend, and no date computed from a spec can overflow (issue 15: `backoff.max: 87600000h` made
every retry time overflow and left the resource Building for ever)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from publishing_operator import api
from publishing_operator import lifecycle as lc
from publishing_operator.api import Backoff, Phase, PublishingBuildStatus, Reason, RetrySpec
from publishing_operator.durations import MAX_NANOSECONDS, duration_nanoseconds, parse_duration
from publishing_testkit.kube_emulator.admission import go_parse_duration
from tests.fixtures.builders import spec

T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
UID = "0f1e2d3c-aaaa-bbbb-cccc-000000000015"


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("2s", 2 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("250ms", 250 * 10**6),
        ("0.0000005s", 500),  # below a microsecond, still longer than zero
        ("0.0000000001ms", 0),  # below a nanosecond: zero, as in Go
        ("0." + "9" * 40 + "s", 10**9),  # Go reads at most ~18 fraction digits
        ("2562047h", 2562047 * 3600 * 10**9),  # the longest whole-hour duration Go holds
    ],
)
def test_durations_parse_as_go_does(text: str, nanoseconds: int) -> None:
    assert duration_nanoseconds(text) == nanoseconds
    assert go_parse_duration(text) == nanoseconds  # the emulator's CEL duration() agrees


@pytest.mark.parametrize("text", ["2562048h", "87600000h", "9" * 30 + "h", "9223372036854775808ms"])
def test_durations_beyond_go_are_a_value_error_not_an_overflow(text: str) -> None:
    with pytest.raises(ValueError, match="longer than about 292 years"):
        parse_duration(text)
    with pytest.raises(ValueError, match="type conversion error"):
        go_parse_duration(text)


def test_the_longest_duration_fits_a_timedelta() -> None:
    assert parse_duration("2562047h") < timedelta(days=106752)
    assert MAX_NANOSECONDS == 2**63 - 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"retry": {"backoff": {"max": "87600000h"}}}, "longer than about 292 years"),
        ({"retry": {"backoff": {"max": "24h1ms"}}}, api.MSG_MAX_BACKOFF),
        ({"retry": {"backoff": {"initial": "1s", "max": "2000000h"}}}, api.MSG_MAX_BACKOFF),
        ({"timeouts": {"build": "169h"}}, api.MSG_MAX_TIMEOUT),
        ({"timeouts": {"submit": "10081m"}}, api.MSG_MAX_TIMEOUT),
        ({"timeouts": {"build": "9" * 30 + "h"}}, "longer than about 292 years"),
        ({"timeouts": {"submit": "0.0000000001ms"}}, api.MSG_POSITIVE_DURATION),
    ],
)
def test_the_models_refuse_what_the_crd_refuses(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**overrides)


def test_the_ceilings_themselves_are_allowed() -> None:
    s = spec(
        retry={"backoff": {"initial": "24h", "max": "24h"}}, timeouts={"build": "168h", "submit": "168h"}
    )
    assert s.retry.backoff.delay(1) == timedelta(hours=24)
    assert s.timeouts.build_timeout == timedelta(days=7)
    assert spec(timeouts={"submit": "0.0000005s"}).timeouts.submit == "0.0000005s"


def test_backoff_never_exceeds_its_ceiling_even_past_validation() -> None:
    """A spec that bypassed validation (an older CRD, a hand-built model) still waits at most 24h."""
    unchecked = Backoff.model_construct(initial="2000000h", factor=10.0, max="2000000h")
    assert unchecked.delay(1) == timedelta(hours=24)
    assert unchecked.delay(10**6) == timedelta(hours=24)


def test_an_infra_failure_with_the_longest_backoff_schedules_the_next_attempt() -> None:
    """The sequence of issue 15, through the lifecycle: no overflow, a retry time a day later."""
    s = spec(retry={"maxAttempts": 10, "backoff": {"initial": "24h", "factor": 10, "max": "24h"}})
    ctx = lc.Ctx(uid=UID, generation=1, now=T0)
    status = lc.on_credentials(
        PublishingBuildStatus(), ok=True, reason=Reason.VALIDATED, message="ok", ctx=ctx
    ).status
    for attempt in range(1, 10):
        status = lc.on_slot_granted(s, status, ctx).status
        failed = lc.BuildObservation(id=f"b{attempt}", status="ERRORED", error_code="UNKNOWN_ERROR")
        status = lc.on_build_observed(s, status, failed, ctx).status
        assert status.phase is Phase.QUEUED
        assert status.next_retry_time == T0 + timedelta(hours=24)
    # Past validation (an older CRD): the longest duration Go holds is still a day's wait.
    unchecked = Backoff.model_construct(initial="2562047h", factor=10.0, max="2562047h")
    bypassed = s.model_copy(update={"retry": RetrySpec.model_construct(max_attempts=3, backoff=unchecked)})
    status = lc.on_credentials(
        PublishingBuildStatus(), ok=True, reason=Reason.VALIDATED, message="ok", ctx=ctx
    ).status
    status = lc.on_slot_granted(bypassed, status, ctx).status
    failed = lc.BuildObservation(id="b1", status="ERRORED", error_code="SERVER_ERROR")
    retried = lc.on_build_observed(bypassed, status, failed, ctx).status
    assert (retried.phase, retried.next_retry_time) == (Phase.QUEUED, T0 + timedelta(hours=24))
