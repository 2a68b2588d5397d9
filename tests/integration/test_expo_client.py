"""The Expo client against the simulator over real sockets: happy paths, faults, retries, secrecy."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from publishing_operator.api import Platform, Workflow
from publishing_operator.expo.client import ExpoClient
from publishing_operator.expo.errors import (
    ErrorKind,
    ExpoAuthError,
    ExpoError,
    ExpoTransientError,
    ExpoUnknownError,
    ExpoUserError,
)
from publishing_operator.expo.models import (
    AndroidSigning,
    AscApiKey,
    EasBuildState,
    EasSubmissionState,
    IosSigning,
    SigningMaterial,
)
from publishing_operator.expo.transport import RequestOutcome, RetryPolicy
from publishing_testkit.expo_simulator.server import SimulatorHandle
from publishing_testkit.expo_simulator.state import CallFault, FaultsRequest, OutcomeFault, fingerprint
from tests.fixtures.expo import EXPO_TOKEN, RecordedSleeps, start_github_build

APP = "9a0c7f1e-3b7d-4a55-8f0e-2d7c1b6a4e90"
P8 = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg\n"
    "-----END PRIVATE KEY-----\n"
)
PLAY_KEY = '{"type": "service_account", "client_email": "ci@p.iam.gserviceaccount.com", "private_key": "x"}'


def uploaded(sim: SimulatorHandle) -> str:
    """A bucket key the simulator considers uploaded (the real upload is tested in test_expo_archive)."""
    upload = sim.state.create_upload_session("EAS_BUILD_GCS_PROJECT_SOURCES", "project.tar.gz")
    sim.state.complete_upload(upload.bucket_key, size=3, md5_base64="md5", sha256="sha")
    return upload.bucket_key


def fault(sim: SimulatorHandle, **kwargs: Any) -> None:
    sim.state.add_faults(FaultsRequest(calls=[CallFault(**kwargs)]))


def finish_everything(sim: SimulatorHandle) -> None:
    sim.state.advance_clock(3600)


IOS_SIGNING = SigningMaterial(
    ios=IosSigning(
        target_name="App", provisioning_profile_base64="cHJvZmlsZQ==", p12_base64="cDEy", p12_password="pw"
    )
)
ANDROID_SIGNING = SigningMaterial(
    android=AndroidSigning(keystore_base64="a2V5c3RvcmU=", keystore_password="ks", key_alias="upload")
)


async def start_ios_github_build(client: ExpoClient) -> Any:
    """A GitHub build whose details do not matter to the test (its failures do)."""
    return await start_github_build(
        client,
        app_id=APP,
        platform=Platform.IOS,
        profile="p",
        git_ref="main",
        base_directory=None,
        request_key="k",
    )


async def create_ios_build(client: ExpoClient, sim: SimulatorHandle, key: str = "req-1") -> Any:
    return await client.create_archive_build(
        app_id=APP,
        platform=Platform.IOS,
        profile="production",
        bucket_key=uploaded(sim),
        project_root_directory="apps/mobile",
        workflow=Workflow.MANAGED,
        build_version="42",
        signing=IOS_SIGNING,
        request_key=key,
    )


# ---------------------------------------------------------------- happy paths


async def test_whoami_names_the_robot(expo_client: ExpoClient) -> None:
    actor = await expo_client.whoami()
    assert actor.typename == "Robot"
    assert actor.accounts[0].name == "simulator"


async def test_archive_build_runs_to_finished(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    build = await create_ios_build(expo_client, expo_simulator)
    assert build.status in (EasBuildState.NEW, EasBuildState.IN_QUEUE)
    assert build.platform is Platform.IOS
    assert build.message == "req-1"
    assert build.buildProfile == "production"
    assert build.url == f"https://expo.dev/accounts/simulator/projects/{build.app.slug}/builds/{build.id}"

    (seen,) = expo_simulator.state.describe_builds()
    assert seen["workflow"] == "MANAGED"
    assert seen["projectRootDirectory"] == "apps/mobile"
    assert seen["version"] == {"buildNumber": "42"}
    assert seen["source"]["type"] == "GCS"
    assert seen["credentialsFingerprint"] == fingerprint(IOS_SIGNING.job_secrets(Platform.IOS))

    finish_everything(expo_simulator)
    done = await expo_client.get_build(build.id)
    assert done.status is EasBuildState.FINISHED
    assert done.artifacts is not None
    assert done.artifacts.applicationArchiveUrl is not None
    assert done.artifacts.applicationArchiveUrl.endswith(".ipa")
    assert done.completedAt is not None


async def test_queued_build_reports_queue_position_and_wait(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    expo_simulator.state.configure({"time_scale": 1.0, "new_seconds": 0, "queue_seconds": 300})
    first = await create_ios_build(expo_client, expo_simulator, "a")
    second = await create_ios_build(expo_client, expo_simulator, "b")
    first, second = await expo_client.get_build(first.id), await expo_client.get_build(second.id)
    assert (first.status, second.status) == (EasBuildState.IN_QUEUE, EasBuildState.IN_QUEUE)
    assert (first.queuePosition, second.queuePosition) == (1, 2)
    assert second.estimatedWaitTimeLeftSeconds is not None
    assert 0 < second.estimatedWaitTimeLeftSeconds <= 300


async def test_find_builds_newest_first_by_profile(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    for key in ("k1", "k2", "k3"):
        await create_ios_build(expo_client, expo_simulator, key)
        expo_simulator.state.advance_clock(0.01)  # createdAt has millisecond resolution
    await expo_client.create_archive_build(
        app_id=APP,
        platform=Platform.IOS,
        profile="preview",
        bucket_key=uploaded(expo_simulator),
        project_root_directory=".",
        workflow=Workflow.GENERIC,
        build_version=None,
        signing=None,
        request_key="other",
    )
    found = await expo_client.find_builds(app_id=APP, platform=Platform.IOS, profile="production")
    assert [b.message for b in found] == ["k3", "k2", "k1"]
    assert await expo_client.find_builds(app_id=APP, platform=Platform.ANDROID, profile=None) == []


async def test_find_builds_sorts_even_if_expo_lists_oldest_first(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    expo_simulator.state.configure({"builds_order": "oldest_first"})
    for key in ("k1", "k2"):
        await create_ios_build(expo_client, expo_simulator, key)
        # createdAt has millisecond resolution: two creates in one millisecond would tie.
        expo_simulator.state.advance_clock(0.01)
    found = await expo_client.find_builds(app_id=APP, platform=Platform.IOS, profile="production")
    assert [b.message for b in found] == ["k2", "k1"]


async def test_cancel_build_goes_through_pending_cancel(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    expo_simulator.state.configure({"time_scale": 1.0})
    build = await create_ios_build(expo_client, expo_simulator)
    cancelled = await expo_client.cancel_build(build.id)
    assert cancelled.status is EasBuildState.PENDING_CANCEL
    finish_everything(expo_simulator)
    assert (await expo_client.get_build(build.id)).status is EasBuildState.CANCELED
    # Cancelling again changes nothing (the client may retry a cancel whose answer was lost).
    assert (await expo_client.cancel_build(build.id)).status is EasBuildState.CANCELED


async def test_github_build_is_stamped_with_the_request_key(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    build = await start_github_build(
        expo_client,
        app_id=APP,
        platform=Platform.ANDROID,
        profile="production",
        git_ref="refs/tags/v1.2.0",
        base_directory="apps/mobile",
        request_key="uid-1.1",
    )
    assert build.message == "uid-1.1"
    assert build.gitRef == "refs/tags/v1.2.0"
    assert build.platform is Platform.ANDROID
    (seen,) = expo_simulator.state.describe_builds()
    assert seen["origin"] == "github"
    assert seen["source"]["baseDirectory"] == "apps/mobile"
    assert len(expo_simulator.state.calls_of("createGitHubBuild")) == 1
    found = await expo_client.find_builds(app_id=APP, platform=Platform.ANDROID, profile="production")
    assert [b.id for b in found] == [build.id]


async def test_github_build_receipt_failure_is_a_user_error(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    expo_simulator.state.add_faults(
        FaultsRequest(outcomes=[OutcomeFault(target="receipt", error_code="GITHUB_REPO_NOT_LINKED")])
    )
    with pytest.raises(ExpoUserError) as caught:
        await start_ios_github_build(expo_client)
    assert caught.value.error_code == "GITHUB_REPO_NOT_LINKED"
    assert expo_simulator.state.builds == {}


async def test_github_build_without_result_id_is_an_unknown_error(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    expo_simulator.state.configure({"receipt_result_id": "none"})
    with pytest.raises(ExpoUnknownError, match="without naming the build"):
        await start_ios_github_build(expo_client)


async def test_github_builds_forbidden_for_the_token(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    expo_simulator.state.configure({"github_builds_allowed": False})
    with pytest.raises(ExpoAuthError) as caught:
        await start_ios_github_build(expo_client)
    assert caught.value.error_code == "UNAUTHORIZED_ERROR"


async def test_ios_submission_lifecycle(expo_client: ExpoClient, expo_simulator: SimulatorHandle) -> None:
    expo_simulator.state.configure({"time_scale": 1.0})
    build = await create_ios_build(expo_client, expo_simulator)
    key = AscApiKey(key_p8=P8, key_id="2X9R4HXF34", issuer_id="57246542-96fe-1a63-e053-0824d011072a")
    submission = await expo_client.create_ios_submission(
        app_id=APP, build_id=build.id, asc_app_id="1234567890", api_key=key, groups=["QA"], changelog="fixes"
    )
    assert submission.status is EasSubmissionState.AWAITING_BUILD
    assert submission.submittedBuildId == build.id
    (seen,) = expo_simulator.state.describe_submissions()
    assert seen["config"]["ascApiKey"]["keyP8Fingerprint"] == fingerprint(P8)
    assert seen["config"]["groups"] == ["QA"]
    assert P8 not in str(seen)

    assert [s.id for s in await expo_client.build_submissions(build.id)] == [submission.id]
    finish_everything(expo_simulator)
    done = await expo_client.get_submission(submission.id)
    assert done.status is EasSubmissionState.FINISHED
    assert done.completedAt is not None


async def test_android_submission_with_rollout_and_cancel(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    build = await expo_client.create_archive_build(
        app_id=APP,
        platform=Platform.ANDROID,
        profile="production",
        bucket_key=uploaded(expo_simulator),
        project_root_directory=".",
        workflow=Workflow.GENERIC,
        build_version="7",
        signing=ANDROID_SIGNING,
        request_key="k",
    )
    finish_everything(expo_simulator)
    expo_simulator.state.configure({"time_scale": 1.0})
    submission = await expo_client.create_android_submission(
        app_id=APP,
        build_id=build.id,
        track="beta",
        release_status="inProgress",
        rollout=0.2,
        changes_not_sent_for_review=True,
        service_account_json=PLAY_KEY,
        changelog=None,
    )
    assert submission.status is EasSubmissionState.IN_QUEUE
    (seen,) = expo_simulator.state.describe_submissions()
    assert seen["config"]["releaseStatus"] == "IN_PROGRESS"
    assert seen["config"]["rollout"] == 0.2
    assert seen["credentialsFingerprint"] == fingerprint(PLAY_KEY)
    assert (await expo_client.cancel_submission(submission.id)).status is EasSubmissionState.CANCELED


async def test_failed_build_and_submission_carry_error_codes(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle
) -> None:
    expo_simulator.state.add_faults(
        FaultsRequest(
            outcomes=[
                OutcomeFault(
                    target="build", error_code="EAS_BUILD_UNKNOWN_FASTLANE_ERROR", message="fastlane"
                ),
            ]
        )
    )
    failed = await create_ios_build(expo_client, expo_simulator, "bad")
    good = await create_ios_build(expo_client, expo_simulator, "good")
    finish_everything(expo_simulator)
    failed = await expo_client.get_build(failed.id)
    assert failed.status is EasBuildState.ERRORED
    assert failed.error is not None
    assert failed.error.errorCode == "EAS_BUILD_UNKNOWN_FASTLANE_ERROR"
    assert (await expo_client.get_build(good.id)).status is EasBuildState.FINISHED

    expo_simulator.state.add_faults(
        FaultsRequest(outcomes=[OutcomeFault(target="submission", error_code="ASC_AUTH", message="no")])
    )
    key = AscApiKey(key_p8=P8, key_id="K", issuer_id="I")
    sub = await expo_client.create_ios_submission(
        app_id=APP, build_id=good.id, asc_app_id="1", api_key=key, groups=[], changelog=None
    )
    finish_everything(expo_simulator)
    sub = await expo_client.get_submission(sub.id)
    assert sub.status is EasSubmissionState.ERRORED
    assert sub.error is not None
    assert sub.error.errorCode == "ASC_AUTH"


async def test_unknown_build_is_a_user_error(expo_client: ExpoClient) -> None:
    with pytest.raises(ExpoUserError) as caught:
        await expo_client.get_build("00000000-0000-0000-0000-000000000000")
    assert caught.value.request_id


# ---------------------------------------------------------------- faults and retries


@pytest.mark.parametrize(
    ("fault_kwargs", "error_class"),
    [
        ({"http_status": 500}, ExpoTransientError),
        ({"http_status": 502}, ExpoTransientError),
        ({"http_status": 503}, ExpoTransientError),
        ({"http_status": 429, "retry_after": 1}, ExpoTransientError),
        ({"error_code": "INTERNAL_SERVER_ERROR", "is_transient": True}, ExpoTransientError),
        ({"drop": "before"}, ExpoTransientError),
        ({"error_code": "UNAUTHORIZED_ERROR", "error_type": "USER"}, ExpoAuthError),
        ({"error_code": "VALIDATION_ERROR"}, ExpoUserError),
        ({"error_code": "SOMETHING", "error_type": "USER"}, ExpoUserError),
        ({"error_code": "EAS_BUILD_FREE_TIER_LIMIT_EXCEEDED", "is_transient": True}, ExpoUserError),
        ({"http_status": 400}, ExpoUserError),
        ({"error_code": "WEIRD", "error_type": "INTERNAL"}, ExpoUnknownError),
    ],
)
async def test_fault_maps_to_error_class(
    expo_client: ExpoClient,
    expo_simulator: SimulatorHandle,
    expo_sleeps: RecordedSleeps,
    fault_kwargs: dict[str, Any],
    error_class: type[ExpoError],
) -> None:
    fault(expo_simulator, operation="byId", count=10, **fault_kwargs)
    with pytest.raises(error_class) as caught:
        await expo_client.get_build("any")
    error = caught.value
    assert error.operation == "BuildById"
    calls = len(expo_simulator.state.calls_of("BuildById"))
    if error.is_transient:  # retried up to the policy's attempts, with a wait between
        assert calls == 3
        assert len(expo_sleeps) == 2
    else:
        assert calls == 1
        assert expo_sleeps == []
    assert EXPO_TOKEN not in str(error)
    assert EXPO_TOKEN not in repr(error)


async def test_transient_fault_then_success(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle, expo_sleeps: RecordedSleeps
) -> None:
    fault(expo_simulator, operation="meActor", count=2, http_status=503)
    assert (await expo_client.whoami()).typename == "Robot"
    assert len(expo_sleeps) == 2
    assert 0.25 <= expo_sleeps[0] <= 0.5  # initial 0.5 with up to 50 % jitter
    assert 0.5 <= expo_sleeps[1] <= 1.0


async def test_retry_after_is_honoured(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle, expo_sleeps: RecordedSleeps
) -> None:
    fault(expo_simulator, operation="BuildById", http_status=429, retry_after=7)
    with pytest.raises(ExpoUserError):  # the retried call reaches the real (unknown) build
        await expo_client.get_build("missing")
    assert expo_sleeps == [7.0]


async def test_long_retry_after_is_left_to_the_caller(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle, expo_sleeps: RecordedSleeps
) -> None:
    fault(expo_simulator, operation="meActor", http_status=429, retry_after=120)
    with pytest.raises(ExpoTransientError) as caught:
        await expo_client.whoami()
    assert caught.value.retry_after == 120
    assert caught.value.http_status == 429
    assert expo_sleeps == []


async def test_timeout_is_transient(expo_simulator: SimulatorHandle, expo_sleeps: RecordedSleeps) -> None:
    fault(expo_simulator, operation="meActor", latency=0.5)
    client = ExpoClient(
        expo_simulator.graphql_url, EXPO_TOKEN, timeout=0.1, retry=RetryPolicy(attempts=1), sleep=expo_sleeps
    )
    async with client:
        with pytest.raises(ExpoTransientError) as caught:
            await client.whoami()
    assert "timed out" in str(caught.value)


async def test_bad_token_is_an_auth_error(expo_simulator: SimulatorHandle) -> None:
    async with ExpoClient(expo_simulator.url, "not-the-token") as client:
        with pytest.raises(ExpoAuthError) as caught:
            await client.whoami()
    assert caught.value.http_status == 401
    assert caught.value.kind is ErrorKind.AUTH


@pytest.mark.parametrize("fault_kwargs", [{"drop": "after"}, {"http_status": 502}, {"drop": "before"}])
async def test_create_build_is_never_retried(
    expo_client: ExpoClient,
    expo_simulator: SimulatorHandle,
    expo_sleeps: RecordedSleeps,
    fault_kwargs: dict[str, Any],
) -> None:
    fault(expo_simulator, operation="createIosBuild", **fault_kwargs)
    with pytest.raises(ExpoTransientError) as caught:
        await create_ios_build(expo_client, expo_simulator)
    assert caught.value.ambiguous
    assert len(expo_simulator.state.calls_of("createIosBuild")) == 1
    assert expo_sleeps == []
    applied = 1 if fault_kwargs.get("drop") == "after" else 0
    assert len(expo_simulator.state.builds) == applied
    # The lifecycle's recovery: look the build up by its request key.
    found = await expo_client.find_builds(app_id=APP, platform=Platform.IOS, profile="production")
    assert [b.message for b in found] == ["req-1"] * applied


async def test_create_submission_is_never_retried(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle, expo_sleeps: RecordedSleeps
) -> None:
    build = await create_ios_build(expo_client, expo_simulator)
    fault(expo_simulator, operation="createIosSubmission", drop="after")
    key = AscApiKey(key_p8=P8, key_id="K", issuer_id="I")
    with pytest.raises(ExpoTransientError) as caught:
        await expo_client.create_ios_submission(
            app_id=APP, build_id=build.id, asc_app_id="1", api_key=key, groups=[], changelog=None
        )
    assert caught.value.ambiguous
    assert len(expo_simulator.state.calls_of("createIosSubmission")) == 1
    assert len(await expo_client.build_submissions(build.id)) == 1


async def test_refused_connection_is_transient_but_not_ambiguous() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ExpoClient(f"http://127.0.0.1:{port}/graphql", EXPO_TOKEN, retry=RetryPolicy(attempts=1))
    async with client:
        with pytest.raises(ExpoTransientError) as caught:
            await client.create_archive_build(
                app_id=APP,
                platform=Platform.IOS,
                profile="p",
                bucket_key="b",
                project_root_directory=".",
                workflow=Workflow.MANAGED,
                build_version=None,
                signing=None,
                request_key="k",
            )
    assert not caught.value.ambiguous


async def test_graphql_errors_with_http_400(expo_client: ExpoClient, expo_simulator: SimulatorHandle) -> None:
    # API.md 6: Expo answered some errors with HTTP 400; the classification must not depend on it.
    expo_simulator.state.configure({"graphql_error_status": 400})
    with pytest.raises(ExpoUserError) as caught:
        await expo_client.get_build("missing")
    assert caught.value.http_status == 400
    assert caught.value.error_code == "ENTITY_NOT_FOUND"


# ---------------------------------------------------------------- secrecy and observability


async def test_token_and_secrets_never_logged_or_shown(
    expo_simulator: SimulatorHandle, expo_sleeps: RecordedSleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outcomes: list[RequestOutcome] = []
    client = ExpoClient(
        expo_simulator.graphql_url, EXPO_TOKEN, sleep=expo_sleeps, on_request=outcomes.append, timeout=5
    )
    errors: list[ExpoError] = []
    async with client:
        build = await create_ios_build(client, expo_simulator)
        await client.create_ios_submission(
            app_id=APP,
            build_id=build.id,
            asc_app_id="1",
            api_key=AscApiKey(key_p8=P8, key_id="K", issuer_id="I"),
            groups=[],
            changelog=None,
        )
        for kwargs in ({"http_status": 500, "count": 3}, {"error_code": "UNAUTHORIZED_ERROR"}):
            fault(expo_simulator, operation="BuildById", **kwargs)
            with pytest.raises(ExpoError) as caught:
                await client.get_build(build.id)
            errors.append(caught.value)
        shown = [repr(client), str(client), *(str(e) for e in errors), *(repr(e) for e in errors)]
    secrets = [EXPO_TOKEN, P8.splitlines()[1], "cHJvZmlsZQ==", "cDEy"]
    for secret in secrets:
        assert secret not in caplog.text
        assert not any(secret in text for text in shown)
    expo_lines = [r.getMessage() for r in caplog.records if r.name == "publishing_operator.expo"]
    assert any("CreateIosBuild ok" in line for line in expo_lines)
    assert any("BuildById transient" in line for line in expo_lines)
    assert [o.outcome for o in outcomes if o.operation == "BuildById"] == ["transient"] * 3 + ["auth"]
    assert all(o.request_id for o in outcomes)
