"""The simulator's state machine on a hand-driven clock: every status at the right moment."""

from __future__ import annotations

import pytest

from publishing_testkit.expo_simulator.state import (
    ApiError,
    FaultsRequest,
    OutcomeFault,
    SimulatorConfig,
    SimulatorState,
)
from tests.fixtures.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> SimulatorState:
    config = SimulatorConfig(
        new_seconds=2,
        queue_seconds=10,
        build_seconds=100,
        cancel_seconds=4,
        submit_queue_seconds=5,
        submit_seconds=20,
        receipt_seconds=2,
    )
    return SimulatorState(config=config, clock=clock)


def upload(state: SimulatorState) -> str:
    session = state.create_upload_session("EAS_BUILD_GCS_PROJECT_SOURCES", "p.tar.gz")
    state.complete_upload(session.bucket_key, size=1, md5_base64="m", sha256="s")
    return session.bucket_key


def job(bucket_key: str, **extra: object) -> dict[str, object]:
    return {
        "type": "MANAGED",
        "projectArchive": {"type": "GCS", "bucketKey": bucket_key},
        "projectRootDirectory": ".",
        **extra,
    }


def new_build(state: SimulatorState, platform: str = "IOS", **metadata: object) -> str:
    build = state.create_build(
        app_id="app", platform=platform, job=job(upload(state)), metadata=dict(metadata), build_params=None
    )
    return build.id


def status_at(state: SimulatorState, clock: FakeClock, build_id: str, at: float) -> str:
    clock.now = 1000.0 + at
    return state.build(build_id).status


def test_build_moves_through_every_status(state: SimulatorState, clock: FakeClock) -> None:
    build_id = new_build(state)
    assert status_at(state, clock, build_id, 0) == "NEW"
    assert status_at(state, clock, build_id, 2) == "IN_QUEUE"
    assert state.queue_position(state.build(build_id)) == 1
    assert state.wait_left(state.build(build_id)) == 10
    assert status_at(state, clock, build_id, 11.5) == "IN_QUEUE"
    assert state.wait_left(state.build(build_id)) == 1
    assert status_at(state, clock, build_id, 12) == "IN_PROGRESS"
    assert status_at(state, clock, build_id, 111) == "IN_PROGRESS"
    assert status_at(state, clock, build_id, 112) == "FINISHED"
    assert state.builds[build_id].completed == 1112.0


def test_queue_positions_follow_enqueue_order(state: SimulatorState, clock: FakeClock) -> None:
    first = new_build(state)
    clock.now += 1
    second = new_build(state)
    clock.now += 2
    state.advance()
    positions = [state.queue_position(state.builds[b]) for b in (first, second)]
    assert positions == [1, 2]
    assert state.builds[second].initial_queue_position == 2


def test_time_scale_compresses_durations(clock: FakeClock) -> None:
    state = SimulatorState(
        config=SimulatorConfig(time_scale=0.01, new_seconds=0, queue_seconds=0), clock=clock
    )
    build_id = new_build(state)
    assert status_at(state, clock, build_id, 5.99) == "IN_PROGRESS"  # 600 s build, scaled to 6 s
    assert status_at(state, clock, build_id, 6.0) == "FINISHED"


def test_advance_clock_jumps_forward(state: SimulatorState) -> None:
    build_id = new_build(state)
    state.advance_clock(500)
    assert state.build(build_id).status == "FINISHED"


def test_cancel_goes_through_pending_cancel(state: SimulatorState, clock: FakeClock) -> None:
    build_id = new_build(state)
    clock.now += 20
    assert state.cancel_build(build_id).status == "PENDING_CANCEL"
    assert status_at(state, clock, build_id, 23) == "PENDING_CANCEL"
    assert status_at(state, clock, build_id, 24) == "CANCELED"
    assert status_at(state, clock, build_id, 500) == "CANCELED"  # never finishes afterwards


def test_planned_error_ends_the_build_errored(state: SimulatorState, clock: FakeClock) -> None:
    state.add_faults(
        FaultsRequest(
            outcomes=[OutcomeFault(target="build", platform="ANDROID", error_code="E1", message="m")]
        )
    )
    ios = new_build(state, "IOS")
    android = new_build(state, "ANDROID")
    clock.now += 500
    assert state.build(ios).status == "FINISHED"
    assert state.build(android).status == "ERRORED"
    assert state.builds[android].planned_error == ("E1", "m")
    assert state.outcome_faults == []


def test_submission_waits_for_its_build(state: SimulatorState, clock: FakeClock) -> None:
    build_id = new_build(state)
    sub = state.create_submission(
        "IOS",
        {
            "appId": "app",
            "submittedBuildId": build_id,
            "config": {
                "ascAppIdentifier": "1",
                "ascApiKey": {"keyP8": "k", "keyIdentifier": "i", "issuerIdentifier": "s"},
            },
        },
    )
    assert sub.status == "AWAITING_BUILD"
    timeline = {
        50: "AWAITING_BUILD",
        112: "IN_QUEUE",
        117: "IN_PROGRESS",
        136.9: "IN_PROGRESS",
        137: "FINISHED",
    }
    for at, expected in timeline.items():
        clock.now = 1000 + at
        assert state.submission(sub.id).status == expected, at


def test_submission_of_a_failed_build_errors(state: SimulatorState, clock: FakeClock) -> None:
    build_id = new_build(state)
    sub = state.create_submission(
        "IOS",
        {
            "appId": "app",
            "submittedBuildId": build_id,
            "config": {"ascAppIdentifier": "1", "ascApiKeyId": "stored"},
        },
    )
    state.cancel_build(build_id)
    clock.now += 10
    submission = state.submission(sub.id)
    assert submission.status == "ERRORED"
    assert submission.error is not None


def test_github_receipt_creates_the_build_when_done(state: SimulatorState, clock: FakeClock) -> None:
    receipt = state.create_github_build(
        {"appId": "app", "platform": "IOS", "buildProfile": "production", "gitRef": "v1"}
    )
    assert state.receipt(receipt.id).state == "QUEUED"
    clock.now += 1.5
    assert state.receipt(receipt.id).state == "IN_PROGRESS"
    clock.now += 0.5
    done = state.receipt(receipt.id)
    assert done.state == "SUCCESS"
    assert done.result_id is not None
    build = state.builds[done.result_id]
    assert (build.git_ref, build.metadata["buildProfile"], build.origin) == ("v1", "production", "github")
    assert build.created == 1002.0


@pytest.mark.parametrize(
    ("archive", "config", "accepted"),
    [
        ({"type": "URL", "url": "https://example.com/p.tgz"}, {}, True),
        ({"type": "URL", "url": "https://example.com/p.tgz"}, {"accept_url_sources": False}, False),
        ({"type": "GIT", "repositoryUrl": "https://github.com/o/r", "gitRef": "main"}, {}, False),
        ({"type": "GIT", "repositoryUrl": "https://github.com/o/r"}, {"accept_git_sources": True}, True),
        ({"type": "NONE"}, {}, False),
        ({"type": "GCS", "bucketKey": "never-uploaded"}, {}, False),
    ],
)
def test_project_sources(
    state: SimulatorState, archive: dict[str, str], config: dict[str, bool], accepted: bool
) -> None:
    state.configure(config)
    spec = {"type": "GENERIC", "projectArchive": archive, "projectRootDirectory": "."}
    if accepted:
        assert state.create_build(app_id="a", platform="IOS", job=spec, metadata=None, build_params=None)
    else:
        with pytest.raises(ApiError) as caught:
            state.create_build(app_id="a", platform="IOS", job=spec, metadata=None, build_params=None)
        assert caught.value.extensions["errorCode"] == "VALIDATION_ERROR"


def test_metadata_limits_are_configurable(state: SimulatorState) -> None:
    with pytest.raises(ApiError, match="1024"):
        new_build(state, message="x" * 1025)
    with pytest.raises(ApiError, match="gitCommitHash"):
        new_build(state, gitCommitHash="abc")
    state.configure({"enforce_metadata_limits": False})
    assert new_build(state, message="x" * 1025)


def test_list_limit_clamps_or_errors(state: SimulatorState) -> None:
    for _ in range(4):
        new_build(state)
    state.configure({"max_list_limit": 3})
    listed = state.app_builds("app", offset=0, limit=10, build_filter=None, platform=None, status=None)
    assert len(listed) == 3
    state.configure({"list_limit_exceeded": "error"})
    with pytest.raises(ApiError, match="at most 3"):
        state.app_builds("app", offset=0, limit=10, build_filter=None, platform=None, status=None)


def test_unknown_apps_when_auto_create_is_off(state: SimulatorState) -> None:
    state.configure({"auto_create_apps": False})
    with pytest.raises(ApiError) as caught:
        state.app("nope")
    assert caught.value.extensions["errorCode"] == "EXPERIENCE_NOT_FOUND"
    state.add_app("known", slug="shop", owner="acme")
    assert state.app("known").slug == "shop"
    assert state.app_by_full_name("@acme/shop").id == "known"


@pytest.mark.parametrize(
    ("platform", "config", "fragment"),
    [
        ("IOS", {"ascAppIdentifier": "1"}, "exactly one"),
        (
            "IOS",
            {
                "ascAppIdentifier": "1",
                "ascApiKeyId": "x",
                "ascApiKey": {"keyP8": "k", "keyIdentifier": "i", "issuerIdentifier": "s"},
            },
            "exactly one",
        ),
        ("ANDROID", {"track": "beta"}, "exactly one"),
        ("ANDROID", {"track": "beta", "googleServiceAccountKeyId": "k", "rollout": 0.5}, "IN_PROGRESS"),
        (
            "ANDROID",
            {"track": "beta", "googleServiceAccountKeyId": "k", "rollout": 2, "releaseStatus": "IN_PROGRESS"},
            "between 0 and 1",
        ),
    ],
)
def test_submission_validation(
    state: SimulatorState, platform: str, config: dict[str, object], fragment: str
) -> None:
    build_id = new_build(state, platform)
    with pytest.raises(ApiError, match=fragment):
        state.create_submission(platform, {"appId": "app", "submittedBuildId": build_id, "config": config})


def test_submission_platform_must_match_build(state: SimulatorState) -> None:
    build_id = new_build(state, "IOS")
    with pytest.raises(ApiError, match="not ANDROID"):
        state.create_submission(
            "ANDROID",
            {
                "appId": "app",
                "submittedBuildId": build_id,
                "config": {"track": "t", "googleServiceAccountKeyId": "k"},
            },
        )


def test_reset_forgets_everything_but_tokens(clock: FakeClock) -> None:
    state = SimulatorState(config=SimulatorConfig(time_scale=0.5), tokens={"t"}, clock=clock)
    new_build(state)
    state.configure({"time_scale": 2})
    state.add_faults(FaultsRequest(outcomes=[OutcomeFault(target="build")]))
    state.reset()
    assert (state.builds, state.uploads, state.outcome_faults) == ({}, {}, [])
    assert state.config.time_scale == 0.5
    assert state.tokens == {"t"}
