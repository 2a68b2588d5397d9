"""The simulator over HTTP as any client sees it: auth, GET queries, validation, uploads, admin API."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from publishing_testkit.expo_simulator.server import SimulatorHandle, SimulatorThread
from tests.fixtures.expo import EXPO_TOKEN

AUTH = {"Authorization": f"Bearer {EXPO_TOKEN}"}
ME = "query Me { meActor { __typename id } }"


@pytest.fixture
async def http(expo_simulator: SimulatorHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=expo_simulator.url, timeout=5) as client:
        yield client


async def gql(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] = AUTH,
) -> httpx.Response:
    return await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


# ---------------------------------------------------------------- GraphQL endpoint


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
async def test_bad_token_gets_401_with_empty_errors(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await gql(http, ME, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"errors": []}


async def test_every_response_carries_a_request_id(http: httpx.AsyncClient) -> None:
    ok = await gql(http, ME)
    assert ok.status_code == 200
    assert ok.json()["data"]["meActor"]["__typename"] == "Robot"
    assert ok.headers["expo-request-id"]
    failed = await gql(http, "query B($id: ID!) { builds { byId(buildId: $id) { id } } }", {"id": "nope"})
    (error,) = failed.json()["errors"]
    assert error["extensions"]["requestId"] == failed.headers["expo-request-id"]
    assert error["extensions"]["errorCode"] == "ENTITY_NOT_FOUND"
    assert error["extensions"]["errorType"] == "USER"


async def test_queries_may_be_sent_as_get(http: httpx.AsyncClient, expo_simulator: SimulatorHandle) -> None:
    response = await http.get("/graphql", params={"query": ME}, headers=AUTH)
    assert response.json()["data"]["meActor"]["id"]
    mutation = 'mutation { build { cancelBuild(buildId: "x") { id } } }'
    assert (await http.get("/graphql", params={"query": mutation}, headers=AUTH)).status_code == 405
    expo_simulator.state.configure({"accept_get_queries": False})
    assert (await http.get("/graphql", params={"query": ME}, headers=AUTH)).status_code == 405


async def test_app_lists_the_profiles_of_its_builds(
    http: httpx.AsyncClient, expo_simulator: SimulatorHandle
) -> None:
    for app_id, profile in [("app-1", "production"), ("app-1", "preview"), ("app-2", "other")]:
        expo_simulator.state.create_build(
            app_id=app_id,
            platform="IOS",
            job={"projectArchive": {"type": "URL", "url": "https://example.com/p.tar.gz"}},
            metadata={"buildProfile": profile},
            build_params=None,
        )
    query = 'query { app { byId(appId: "app-1") { buildProfiles builds(offset: 0, limit: 5) { id } } } }'
    app = (await gql(http, query)).json()["data"]["app"]["byId"]
    assert app["buildProfiles"] == ["preview", "production"]
    assert len(app["builds"]) == 2


async def test_documents_are_validated_against_the_schema(http: httpx.AsyncClient) -> None:
    drift = await gql(http, 'query { builds { byId(buildId: "x") { id notAField } } }')
    assert drift.status_code == 400
    (error,) = drift.json()["errors"]
    assert "Cannot query field 'notAField' on type 'Build'" in error["message"]
    assert error["extensions"]["errorCode"] == "GRAPHQL_VALIDATION_FAILED"
    broken = await gql(http, "query {")
    assert broken.status_code == 400
    assert broken.json()["errors"][0]["extensions"]["errorCode"] == "GRAPHQL_PARSE_FAILED"


async def test_upload_session_and_signed_put(
    http: httpx.AsyncClient, expo_simulator: SimulatorHandle
) -> None:
    response = await gql(
        http,
        "mutation U($t: UploadSessionType!) "
        '{ uploadSession { createUploadSession(type: $t, filename: "p.tgz") } }',
        {"t": "EAS_BUILD_GCS_PROJECT_SOURCES"},
    )
    session = response.json()["data"]["uploadSession"]["createUploadSession"]
    assert set(session) == {"url", "headers", "bucketKey"}
    data = b"project bytes"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    headers = {**session["headers"], "Content-MD5": md5}

    async with httpx.AsyncClient(timeout=5) as plain:
        wrong_md5 = await plain.put(session["url"], content=data, headers={**headers, "Content-MD5": "AAAA"})
        assert wrong_md5.status_code == 400
        assert "BadDigest" in wrong_md5.text
        no_md5 = await plain.put(session["url"], content=data, headers=session["headers"])
        assert no_md5.status_code == 400
        bad_signature = await plain.put(
            session["url"].replace("Signature=", "Signature=x"), content=data, headers=headers
        )
        assert bad_signature.status_code == 403
        wrong_type = await plain.put(
            session["url"], content=data, headers={**headers, "Content-Type": "text/plain"}
        )
        assert wrong_type.status_code == 403
        assert expo_simulator.state.uploads[session["bucketKey"]].size is None
        ok = await plain.put(session["url"], content=data, headers=headers)
        assert ok.status_code == 200
    upload = expo_simulator.state.uploads[session["bucketKey"]]
    assert (upload.size, upload.md5_base64) == (len(data), md5)


# ---------------------------------------------------------------- admin API


async def test_admin_config_round_trip(http: httpx.AsyncClient) -> None:
    changed = await http.post("/__simulator/config", json={"time_scale": 0.5, "build_seconds": 30})
    assert changed.status_code == 200
    config = (await http.get("/__simulator/config")).json()
    assert (config["time_scale"], config["build_seconds"]) == (0.5, 30)
    assert (await http.post("/__simulator/config", json={"time_scale": 0})).status_code == 400
    assert (await http.post("/__simulator/config", json={"no_such_knob": 1})).status_code == 400


async def test_admin_faults_apply_to_the_next_calls(http: httpx.AsyncClient) -> None:
    pending = await http.post(
        "/__simulator/faults", json={"operation": "meActor", "count": 2, "http_status": 503}
    )
    assert pending.json()["calls"][0]["count"] == 2
    await http.post(
        "/__simulator/faults",
        json={
            "calls": [{"operation": "*", "http_status": 429, "retry_after": 3}],
            "outcomes": [{"target": "build"}],
        },
    )
    assert [(await gql(http, ME)).status_code for _ in range(4)] == [503, 503, 429, 200]
    throttled = await http.get("/__simulator/faults")
    assert throttled.json()["calls"] == []
    assert throttled.json()["outcomes"][0]["target"] == "build"
    calls = (await http.get("/__simulator/calls")).json()
    assert [c["httpStatus"] for c in calls] == [503, 503, 429, 200]
    assert calls[0]["operationName"] == "Me"
    assert "meActor" in calls[0]["fields"]
    assert (await http.post("/__simulator/faults", json={"http_status": 200})).status_code == 400


async def test_admin_graphql_error_fault(http: httpx.AsyncClient) -> None:
    await http.post(
        "/__simulator/faults",
        json={
            "operation": "Me",
            "error_code": "EAS_BUILD_DOWN_FOR_MAINTENANCE",
            "is_transient": True,
            "message": "m",
        },
    )
    (error,) = (await gql(http, ME)).json()["errors"]
    assert error["extensions"]["errorCode"] == "EAS_BUILD_DOWN_FOR_MAINTENANCE"
    assert error["extensions"]["isTransient"] is True


async def test_admin_lists_apps_builds_and_resets(
    http: httpx.AsyncClient, expo_simulator: SimulatorHandle
) -> None:
    app = await http.post("/__simulator/apps", json={"id": "app-1", "slug": "shop", "owner": "acme"})
    assert app.json() == {"id": "app-1", "slug": "shop", "owner": "acme"}
    receipt = await gql(
        http,
        "mutation G($i: GitHubBuildInput!) { githubApp { createGitHubBuild(buildInput: $i) { id } } }",
        {"i": {"appId": "app-1", "platform": "IOS", "buildProfile": "production", "gitRef": "main"}},
    )
    assert receipt.json()["data"]["githubApp"]["createGitHubBuild"]["id"]
    await http.post("/__simulator/advance", json={"seconds": 60})
    (build,) = (await http.get("/__simulator/builds")).json()
    assert build["appId"] == "app-1"
    assert build["platform"] == "IOS"
    assert build["profile"] == "production"
    assert build["status"] == "FINISHED"
    assert build["gitRef"] == "main"
    assert build["createdAt"].endswith("Z")
    assert (await http.get("/__simulator/submissions")).json() == []
    assert (await http.post("/__simulator/advance", json={"seconds": -1})).status_code == 400
    await http.post("/__simulator/reset")
    assert (await http.get("/__simulator/builds")).json() == []
    assert (await http.get("/__simulator/apps")).json() == []


# ---------------------------------------------------------------- other ways to run it


def test_simulator_thread_serves_synchronous_callers(expo_simulator_thread: SimulatorThread) -> None:
    response = httpx.post(expo_simulator_thread.graphql_url, json={"query": ME}, headers=AUTH, timeout=5)
    assert response.json()["data"]["meActor"]["__typename"] == "Robot"
    assert expo_simulator_thread.state.calls_of("meActor")


def test_standalone_command_serves_until_terminated() -> None:
    command = [sys.executable, "-m", "publishing_operator", "expo-simulator", "--port", "0", "--token", "t"]
    with subprocess.Popen([*command, "--time-scale", "0.1"], stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()  # blocks until the server listens (pytest timeout guards it)
            assert banner.startswith("Expo simulator: GraphQL at http://127.0.0.1:")
            url = banner.split(" GraphQL at ")[1].split(",")[0]
            response = httpx.post(url, json={"query": ME}, headers={"Authorization": "Bearer t"}, timeout=5)
            assert response.json()["data"]["meActor"]["id"]
            config = httpx.get(url.replace("/graphql", "/__simulator/config"), timeout=5).json()
            assert config["time_scale"] == 0.1
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0
