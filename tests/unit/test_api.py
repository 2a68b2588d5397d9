"""The pydantic API models: wire shape, defaults, in-process spec validation, helpers."""

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from publishing_operator import api
from publishing_operator.api import (
    Backoff,
    Condition,
    ConditionStatus,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
)

PROJECT_ID = "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90"


def ios_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "app": {"projectId": PROJECT_ID, "platform": "ios"},
        "source": {"github": {"ref": "refs/tags/v1.4.2"}},
        "expo": {"tokenSecretRef": {"name": "expo-robot"}},
    }
    spec.update(overrides)
    return spec


def test_defaults_produce_the_kubernetes_shape() -> None:
    spec = PublishingBuildSpec.model_validate(ios_spec())
    assert spec.to_json() == {
        "app": {"projectId": PROJECT_ID, "platform": "ios", "profile": "production"},
        "source": {"github": {"ref": "refs/tags/v1.4.2"}},
        "expo": {"tokenSecretRef": {"name": "expo-robot", "key": "token"}},
        "retry": {"maxAttempts": 3, "backoff": {"initial": "2s", "factor": 2, "max": "10m"}},
        "timeouts": {"build": "2h", "submit": "1h"},
        "cancel": False,
    }


def test_snake_case_names_are_accepted_too() -> None:
    spec = PublishingBuildSpec.model_validate(
        ios_spec(app={"project_id": PROJECT_ID, "platform": "ios"}, ttl_seconds_after_finished=60)
    )
    assert spec.ttl_seconds_after_finished == 60
    assert spec.to_json()["ttlSecondsAfterFinished"] == 60


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"source": {}}, api.MSG_ONE_SOURCE),
        (
            {"source": {"github": {"ref": "main"}, "archive": {"url": "https://example.com/a.tgz"}}},
            api.MSG_ONE_SOURCE,
        ),
        ({"signing": {"secretRef": {"name": "mobile-ios-signing"}}}, api.MSG_SIGNING_NEEDS_ARCHIVE),
        ({"submit": {}}, api.MSG_ONE_SUBMIT),
        (
            {"submit": {"android": {"serviceAccountKeySecretRef": {"name": "play-publisher"}}}},
            api.MSG_SUBMIT_ANDROID_PLATFORM,
        ),
        ({"retry": {"backoff": {"initial": "1h", "max": "10m"}}}, api.MSG_BACKOFF_ORDER),
        ({"timeouts": {"build": "0s"}}, api.MSG_POSITIVE_DURATION),
        ({"timeouts": {"build": "2 hours"}}, "should match pattern"),
        ({"app": {"projectId": "not-a-uuid", "platform": "ios"}}, "should match pattern"),
        ({"app": {"projectId": PROJECT_ID, "platform": "web"}}, "'ios' or 'android'"),
        ({"source": {"github": {"ref": "main", "baseDirectory": "apps/../etc"}}}, api.MSG_NO_DOTDOT),
        ({"retry": {"maxAttempts": 11}}, "less than or equal to 10"),
    ],
)
def test_in_process_validation_rejects_what_the_crd_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        PublishingBuildSpec.model_validate(ios_spec(**overrides))


def test_android_rules() -> None:
    android = ios_spec(
        app={"projectId": PROJECT_ID, "platform": "android", "buildVersion": "42"},
        submit={
            "android": {
                "releaseStatus": "inProgress",
                "rollout": 0.1,
                "serviceAccountKeySecretRef": {"name": "play-publisher"},
            }
        },
    )
    spec = PublishingBuildSpec.model_validate(android)
    assert spec.submit is not None
    assert spec.submit.android is not None
    assert spec.submit.android.service_account_key_secret_ref.key == "service-account.json"
    assert spec.submit.android.track == "internal"

    android["submit"]["android"]["releaseStatus"] = "completed"
    with pytest.raises(ValidationError, match=api.MSG_ROLLOUT_IN_PROGRESS):
        PublishingBuildSpec.model_validate(android)

    android["submit"]["android"].pop("rollout")
    android["app"]["buildVersion"] = "1.2.3"
    with pytest.raises(ValidationError, match=api.MSG_ANDROID_VERSION_CODE):
        PublishingBuildSpec.model_validate(android)


def test_durations_as_timedelta_and_backoff_sequence() -> None:
    spec = PublishingBuildSpec.model_validate(ios_spec(timeouts={"build": "1h30m"}))
    assert spec.timeouts.build_timeout == timedelta(hours=1, minutes=30)
    assert spec.timeouts.submit_timeout == timedelta(hours=1)
    backoff = Backoff()
    assert [backoff.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff.delay(30) == timedelta(minutes=10)
    assert backoff.delay(10_000) == timedelta(minutes=10)


def test_timestamps_are_rfc3339_utc_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    cond = Condition(
        type=api.COND_SUCCEEDED,
        status=ConditionStatus.UNKNOWN,
        reason=Reason.BUILD_QUEUED,
        message="waiting in the EAS queue",
        last_transition_time=datetime(2026, 11, 27, 20, 0, 0, 123456, tzinfo=plus_two),
    )
    assert cond.last_transition_time == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert cond.to_json()["lastTransitionTime"] == "2026-11-27T18:00:00Z"
    parsed = Condition.model_validate(cond.to_json())
    assert parsed == cond
    assert parsed.last_transition_time.tzinfo is UTC


def test_status_round_trip_and_condition_lookup() -> None:
    wire = {
        "observedGeneration": 1,
        "phase": "Building",
        "conditions": [
            {
                "type": "Succeeded",
                "status": "Unknown",
                "reason": "BuildInProgress",
                "message": "building",
                "lastTransitionTime": "2026-11-27T18:00:00Z",
            },
        ],
        "attempt": 1,
        "build": {"id": "b-1", "requestKey": "uid.1", "queuePosition": 0},
        "history": [
            {"attempt": 1, "result": "Failed", "reason": "BuildFailed", "finishedAt": "2026-11-27T17:00:00Z"}
        ],
        "retryRequest": "again",
    }
    status = PublishingBuildStatus.model_validate(wire)
    assert status.phase is Phase.BUILDING
    assert status.to_json() == wire
    succeeded = status.condition(api.COND_SUCCEEDED)
    assert succeeded is not None
    assert succeeded.reason == Reason.BUILD_IN_PROGRESS
    assert status.condition(api.COND_CREDENTIALS) is None


def test_phase_groups() -> None:
    assert {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED} == api.FINISHED_PHASES
    assert {Phase.BUILDING, Phase.SUBMITTING} == api.IN_FLIGHT_PHASES
    assert not api.FINISHED_PHASES & api.IN_FLIGHT_PHASES


def test_every_reason_is_documented_once() -> None:
    assert set(api.REASONS) == set(Reason)
    for reason, info in api.REASONS.items():
        assert info.condition in (api.COND_SUCCEEDED, api.COND_CREDENTIALS), reason
        assert info.description.endswith("."), reason
        assert reason.description == info.description
    terminal = {
        r for r, i in api.REASONS.items() if i.condition == api.COND_SUCCEEDED and i.status != "Unknown"
    }
    assert Reason.SUCCEEDED in terminal
    assert Reason.CANCELLED in terminal


def test_history_is_bounded() -> None:
    entry = {"attempt": 1, "result": "Failed", "reason": "BuildFailed", "finishedAt": "2026-11-27T17:00:00Z"}
    with pytest.raises(ValidationError):
        PublishingBuildStatus.model_validate({"history": [entry] * (api.HISTORY_LIMIT + 1)})
