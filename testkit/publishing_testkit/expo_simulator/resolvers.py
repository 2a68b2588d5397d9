"""GraphQL root values for the simulator: plain dicts whose callables graphql-core's default resolver
calls with the field arguments. Everything runs synchronously under the state lock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from graphql import GraphQLResolveInfo

from publishing_testkit.expo_simulator.state import (
    ROBOT_ACTOR_ID,
    ApiError,
    App,
    Build,
    Receipt,
    SimulatorState,
    Submission,
)

Info = GraphQLResolveInfo
ARTIFACT_HOST = "https://expo.dev/artifacts/eas"
EXPIRY = timedelta(days=30).total_seconds()


def account_view(state: SimulatorState, name: str) -> dict[str, Any]:
    created = state.wall(0.0)
    return {
        "id": f"account-{name}",
        "name": name,
        "displayName": name,
        "createdAt": created,
        "updatedAt": created,
    }


def actor_view(state: SimulatorState) -> dict[str, Any]:
    return {
        "__typename": "Robot",
        "id": ROBOT_ACTOR_ID,
        "displayName": "simulator robot",
        "firstName": "simulator",
        "created": state.wall(0.0),
        "isExpoAdmin": False,
        "isManagedByGitHubApp": False,
        "accounts": [account_view(state, state.config.owner_account)],
    }


def app_view(state: SimulatorState, app: App) -> dict[str, Any]:
    def builds(
        info: Info,
        offset: int,
        limit: int,
        filter: dict[str, Any] | None = None,
        platform: str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        found = state.app_builds(
            app.id, offset=offset, limit=limit, build_filter=filter, platform=platform, status=status
        )
        return [build_view(state, b) for b in found]

    def submissions(info: Info, filter: dict[str, Any], limit: int, offset: int) -> list[dict[str, Any]]:
        found = state.app_submissions(
            app.id, status=filter.get("status"), platform=filter.get("platform"), limit=limit, offset=offset
        )
        return [submission_view(state, s) for s in found]

    def build_profiles(info: Info) -> list[str]:
        # Only when asked for: every build in a list resolves its `app`, and this scans all builds.
        return sorted(
            {str(b.metadata.get("buildProfile")) for b in state.builds.values() if b.app_id == app.id}
        )

    return {
        "id": app.id,
        "slug": app.slug,
        "name": app.slug,
        "fullName": f"@{app.owner}/{app.slug}",
        "scopeKey": f"@{app.owner}/{app.slug}",
        "ownerAccount": account_view(state, app.owner),
        "buildProfiles": build_profiles,
        "builds": builds,
        "submissions": submissions,
    }


def build_view(state: SimulatorState, build: Build) -> dict[str, Any]:
    md = build.metadata
    now = state.now()
    finished = build.status == "FINISHED"
    extension = "ipa" if build.platform == "IOS" else "aab"
    artifact = f"{ARTIFACT_HOST}/{build.id}.{extension}"
    metrics = None
    if build.completed is not None:
        metrics = {
            "buildWaitTime": int((build.t_start - build.created) * 1000),
            "buildQueueTime": int((build.t_start - build.t_enqueue) * 1000),
            "buildDuration": int(max(0.0, build.completed - build.t_start) * 1000),
        }
    return {
        "id": build.id,
        "app": lambda info: app_view(state, state.apps[build.app_id]),
        "initiatingActor": lambda info: {**actor_view(state), "id": build.initiating_actor},
        "status": build.status,
        "platform": build.platform,
        "buildProfile": build.profile,
        "message": md.get("message"),
        "gitRef": build.git_ref,
        "gitCommitHash": md.get("gitCommitHash"),
        "gitCommitMessage": md.get("gitCommitMessage"),
        "appVersion": md.get("appVersion"),
        "appBuildVersion": md.get("appBuildVersion"),
        "appIdentifier": md.get("appIdentifier"),
        "sdkVersion": md.get("sdkVersion"),
        "runtimeVersion": md.get("runtimeVersion"),
        "distribution": md.get("distribution"),
        "projectRootDirectory": build.project_root_directory,
        "cliVersion": md.get("cliVersion"),
        "queuePosition": state.queue_position(build),
        "initialQueuePosition": build.initial_queue_position,
        "estimatedWaitTimeLeftSeconds": state.wait_left(build),
        "priority": "NORMAL",
        "resourceClassDisplayName": (build.resource_class or "DEFAULT").replace("_", " ").title(),
        "isForIosSimulator": bool(build.job.get("simulator")),
        "maxBuildTimeSeconds": state.config.max_build_time_seconds,
        "metrics": metrics,
        "artifacts": {"buildUrl": artifact, "applicationArchiveUrl": artifact} if finished else None,
        "error": (
            {"errorCode": build.planned_error[0], "message": build.planned_error[1]}
            if build.status == "ERRORED" and build.planned_error
            else None
        ),
        "logFileUrls": [],
        "submissions": lambda info: [submission_view(state, s) for s in state.build_submissions(build.id)],
        "createdAt": state.wall(build.created),
        "updatedAt": state.wall(build.updated),
        "enqueuedAt": state.wall(build.t_enqueue) if now >= build.t_enqueue else None,
        "provisioningStartedAt": state.wall(build.t_start) if now >= build.t_start else None,
        "workerStartedAt": state.wall(build.t_start) if now >= build.t_start else None,
        "completedAt": state.wall(build.completed),
        "expirationDate": state.wall(build.created + EXPIRY),
        "activityTimestamp": state.wall(build.updated),
    }


def submission_view(state: SimulatorState, sub: Submission) -> dict[str, Any]:
    config = sub.config
    return {
        "id": sub.id,
        "app": lambda info: app_view(state, state.apps[sub.app_id]),
        "status": sub.status,
        "platform": sub.platform,
        "priority": "NORMAL",
        "error": {"errorCode": sub.error[0], "message": sub.error[1]} if sub.error else None,
        "logFiles": [],
        "canRetry": sub.status == "ERRORED",
        "maxRetryTimeMinutes": 60,
        "archiveUrl": None,
        "androidConfig": (
            {
                "track": config.get("track"),
                "releaseStatus": config.get("releaseStatus"),
                "rollout": config.get("rollout"),
            }
            if sub.platform == "ANDROID"
            else None
        ),
        "iosConfig": (
            {
                "ascAppIdentifier": config.get("ascAppIdentifier"),
                "ascApiKeyId": config.get("ascApiKeyId"),
                "appleIdUsername": config.get("appleIdUsername"),
            }
            if sub.platform == "IOS"
            else None
        ),
        "submittedBuild": (
            (lambda info: build_view(state, state.builds[sub.build_id]))
            if sub.build_id in state.builds
            else None
        ),
        "createdAt": state.wall(sub.created),
        "updatedAt": state.wall(sub.updated),
        "completedAt": state.wall(sub.completed),
        "activityTimestamp": state.wall(sub.updated),
    }


def receipt_view(state: SimulatorState, receipt: Receipt) -> dict[str, Any]:
    return {
        "id": receipt.id,
        "state": receipt.state,
        "tries": 1,
        "willRetry": False,
        "resultId": receipt.result_id,
        "resultType": "GITHUB_BUILD",
        "resultData": None,
        "errorCode": receipt.error[0] if receipt.error else None,
        "errorMessage": receipt.error[1] if receipt.error else None,
        "createdAt": state.wall(receipt.created),
        "updatedAt": state.wall(receipt.updated),
    }


def query_root(state: SimulatorState) -> dict[str, Any]:
    return {
        "meActor": lambda info: actor_view(state),
        "app": {
            "byId": lambda info, appId: app_view(state, state.app(appId)),
            "byFullName": lambda info, fullName: app_view(state, state.app_by_full_name(fullName)),
        },
        "builds": {"byId": lambda info, buildId: build_view(state, state.build(buildId))},
        "submissions": {
            "byId": lambda info, submissionId: submission_view(state, state.submission(submissionId))
        },
        "backgroundJobReceipt": {"byId": lambda info, id: receipt_view(state, state.receipt(id))},
    }


def mutation_root(state: SimulatorState, upload_base: str) -> dict[str, Any]:
    def create_build(platform: str) -> Any:
        def resolve(
            info: Info,
            appId: str,
            job: dict[str, Any],
            metadata: dict[str, Any] | None = None,
            buildParams: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            build = state.create_build(
                app_id=appId, platform=platform, job=job, metadata=metadata, build_params=buildParams
            )
            return {"build": build_view(state, build), "deprecationInfo": None}

        return resolve

    def create_upload_session(info: Info, type: str, filename: str | None = None) -> dict[str, Any]:
        if type not in (
            "EAS_BUILD_GCS_PROJECT_SOURCES",
            "EAS_BUILD_GCS_PROJECT_METADATA",
            "EAS_SUBMIT_GCS_APP_ARCHIVE",
        ):
            raise ApiError(
                f"Upload session type {type} is not supported by the simulator", code="VALIDATION_ERROR"
            )
        upload = state.create_upload_session(type, filename)
        return {
            "url": f"{upload_base}/__upload/{upload.bucket_key}?X-Goog-Signature={upload.signature}",
            "headers": {"Content-Type": upload.content_type},
            "bucketKey": upload.bucket_key,
        }

    def create_submission(platform: str) -> Any:
        def resolve(info: Info, input: dict[str, Any]) -> dict[str, Any]:
            return {"submission": submission_view(state, state.create_submission(platform, input))}

        return resolve

    def create_github_build(info: Info, buildInput: dict[str, Any]) -> dict[str, Any]:
        return receipt_view(state, state.create_github_build(buildInput))

    return {
        "build": {
            "createIosBuild": create_build("IOS"),
            "createAndroidBuild": create_build("ANDROID"),
            "cancelBuild": lambda info, buildId: build_view(state, state.cancel_build(buildId)),
            "updateBuildMetadata": lambda info, buildId, metadata: build_view(
                state, state.update_build_metadata(buildId, metadata)
            ),
        },
        "submission": {
            "createIosSubmission": create_submission("IOS"),
            "createAndroidSubmission": create_submission("ANDROID"),
            "cancelSubmission": lambda info, submissionId: submission_view(
                state, state.cancel_submission(submissionId)
            ),
        },
        "githubApp": {"createGitHubBuild": create_github_build},
        "uploadSession": {"createUploadSession": create_upload_session},
    }
