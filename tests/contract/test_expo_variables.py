"""The variables the client builds are valid inputs for Expo's real schema.

Every request the client sends while exercising each operation against the simulator is captured
at the HTTP layer and its variables are coerced with graphql-core against Expo's schema, exactly as
Expo's server would before executing. Also checks that every documented operation was exercised.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from graphql import GraphQLError, OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values

from publishing_operator.api import Platform, Workflow
from publishing_operator.egress import ArchivePolicy, parse_allow_list
from publishing_operator.expo import operations
from publishing_operator.expo.client import ExpoClient
from publishing_operator.expo.errors import ExpoError
from publishing_operator.expo.models import AndroidSigning, AscApiKey, IosSigning, SigningMaterial
from publishing_testkit.expo_simulator.server import SimulatorHandle
from tests.contract.expo_schema import expo_schema
from tests.fixtures.expo import EXPO_TOKEN, ArchiveServer, make_tarball, start_github_build

APP = "0b1e8a52-8d8e-4c1b-9d2f-6a3f4e5d6c7b"


async def _exercise(client: ExpoClient, sim: SimulatorHandle, archive: ArchiveServer) -> None:
    await client.whoami()
    bucket = await client.upload_archive(
        url=archive.serve("p.tar.gz", make_tarball({"a": b"a"})), sha256=None
    )
    signing = {
        Platform.IOS: SigningMaterial(
            ios=IosSigning(
                target_name="App", provisioning_profile_base64="cA==", p12_base64="cA==", p12_password="p"
            )
        ),
        Platform.ANDROID: SigningMaterial(
            android=AndroidSigning(
                keystore_base64="cA==", keystore_password="p", key_alias="a", key_password="k"
            )
        ),
    }
    builds = {}
    for platform in Platform:
        builds[platform] = await client.create_archive_build(
            app_id=APP,
            platform=platform,
            profile="production",
            bucket_key=bucket,
            project_root_directory=".",
            workflow=Workflow.MANAGED,
            build_version="12",
            signing=signing[platform],
            request_key=f"key-{platform}",
        )
    await start_github_build(
        client,
        app_id=APP,
        platform=Platform.IOS,
        profile="p",
        git_ref="main",
        base_directory="app",
        request_key="gh",
    )
    await client.find_builds(app_id=APP, platform=Platform.IOS, profile="production")
    await client.find_builds(app_id=APP, platform=Platform.ANDROID, profile=None)
    sim.state.advance_clock(3600)
    ios = await client.create_ios_submission(
        app_id=APP,
        build_id=builds[Platform.IOS].id,
        asc_app_id="123",
        api_key=AscApiKey(key_p8="p8", key_id="KEY", issuer_id="issuer"),
        groups=["QA"],
        changelog="notes",
    )
    await client.create_android_submission(
        app_id=APP,
        build_id=builds[Platform.ANDROID].id,
        track="internal",
        release_status="inProgress",
        rollout=0.5,
        changes_not_sent_for_review=False,
        service_account_json="{}",
        changelog="notes",
    )
    await client.get_submission(ios.id)
    await client.build_submissions(builds[Platform.IOS].id)
    await client.cancel_submission(ios.id)
    await client.get_build(builds[Platform.IOS].id)
    batch = await client.get_builds([build.id for build in builds.values()])
    assert not any(isinstance(found, ExpoError) for found in batch.values())
    await client.cancel_build(builds[Platform.ANDROID].id)


def _coercion_errors(body: dict[str, Any]) -> list[GraphQLError]:
    document = parse(body["query"])
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    result = get_variable_values(expo_schema(), operation.variable_definitions or (), body["variables"])
    return result if isinstance(result, list) else []


async def test_client_variables_coerce_against_expo_schema(
    expo_simulator: SimulatorHandle, archive_server: ArchiveServer
) -> None:
    sent: list[dict[str, Any]] = []

    async def capture(request: httpx.Request) -> None:
        if request.url.path.endswith("/graphql"):
            sent.append(json.loads(request.content))

    async with (
        httpx.AsyncClient(event_hooks={"request": [capture]}) as http,
        ExpoClient(
            expo_simulator.graphql_url,
            EXPO_TOKEN,
            http=http,
            archive_policy=ArchivePolicy(allowed=parse_allow_list(archive_server.host_port)),
        ) as client,
    ):
        await _exercise(client, expo_simulator, archive_server)

    problems = [
        f"{body['operationName']}: {error.message}" for body in sent for error in _coercion_errors(body)
    ]
    assert not problems, "\n".join(problems)
    assert {body["operationName"] for body in sent} == set(operations.OPERATIONS)


def test_a_bad_variable_is_caught() -> None:
    # The check itself: Expo's schema rejects an unknown input field and a wrong enum value.
    body = {
        "query": operations.APP_BUILDS.document,
        "variables": {"appId": "a", "offset": 0, "limit": 5, "filter": {"platform": "ios", "message": "k"}},
    }
    messages = " ".join(error.message for error in _coercion_errors(body))
    assert "message" in messages
    assert "AppPlatform" in messages
