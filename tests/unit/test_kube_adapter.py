"""The Kubernetes adapter (httpx, against a mock transport): Secret reads, guarded writes, Events,
and a rotated token picked up by logging in again once on 401."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import kopf
import pytest

from publishing_operator.adapters.kube import KubeApi, KubeError, SecretData, SecretReadError

SERVER = "https://kube.example:6443"
SECRET_VALUE = b"super-secret-value-0123456789"
BEARER = "Bearer sa-token-must-not-show-up-anywhere"


def secret_json(data: dict[str, str], rv: str = "42") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "expo-robot", "namespace": "team-a", "resourceVersion": rv},
        "type": "Opaque",
        "data": data,
    }


def status_json(code: int, reason: str, message: str) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "code": code,
        "message": message,
    }


class Api:
    """A mock transport that records requests and answers with a canned response."""

    def __init__(
        self, response: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
    ) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.response, Exception):
            raise self.response
        if callable(self.response):
            return self.response(request)
        return self.response

    def kube(self, relogin: Callable[[], kopf.ConnectionInfo | None] | None = None) -> KubeApi:
        client = httpx.AsyncClient(
            base_url=SERVER, headers={"Authorization": BEARER}, transport=httpx.MockTransport(self)
        )
        return KubeApi(client, relogin)


# -- Secrets -----------------------------------------------------------------------------------------


async def test_reads_and_decodes_the_secret_data_with_its_version() -> None:
    api = Api(
        httpx.Response(200, json=secret_json({"token": base64.b64encode(SECRET_VALUE).decode(), "e": ""}))
    )
    kube = api.kube()
    secret = await kube.read_secret("team-a", "expo-robot")
    await kube.aclose()
    assert secret == SecretData({"token": SECRET_VALUE, "e": b""}, "42")
    assert "super-secret" not in repr(secret)
    (request,) = api.requests
    assert request.method == "GET"
    assert str(request.url) == f"{SERVER}/api/v1/namespaces/team-a/secrets/expo-robot"
    assert request.headers["authorization"] == BEARER


async def test_a_secret_without_data_is_empty() -> None:
    body = secret_json({})
    del body["data"]
    kube = Api(httpx.Response(200, json=body)).kube()
    assert await kube.read_secret("team-a", "expo-robot") == SecretData({}, "42")


async def test_not_found_is_none() -> None:
    kube = Api(
        httpx.Response(404, json=status_json(404, "NotFound", 'secrets "expo-robot" not found'))
    ).kube()
    assert await kube.read_secret("team-a", "expo-robot") is None


async def test_forbidden_is_a_read_error_with_the_api_reason() -> None:
    message = (
        'secrets "expo-robot" is forbidden: User "system:serviceaccount:ops:op" cannot get resource "secrets"'
    )
    kube = Api(httpx.Response(403, json=status_json(403, "Forbidden", message))).kube()
    with pytest.raises(SecretReadError) as info:
        await kube.read_secret("team-a", "expo-robot")
    assert info.value.status == 403
    assert (info.value.namespace, info.value.name) == ("team-a", "expo-robot")
    assert str(info.value) == f'cannot read Secret "expo-robot" in namespace "team-a": HTTP 403 {message}'


async def test_server_error_without_status_body() -> None:
    kube = Api(httpx.Response(503, text="upstream unavailable")).kube()
    with pytest.raises(SecretReadError, match=r"HTTP 503$") as info:
        await kube.read_secret("team-a", "expo-robot")
    assert info.value.status == 503
    assert isinstance(info.value, KubeError)  # the step's error policy retries it like any API error


async def test_transport_error_is_a_read_error() -> None:
    kube = Api(httpx.ConnectError("connection refused")).kube()
    with pytest.raises(SecretReadError, match="ConnectError") as info:
        await kube.read_secret("team-a", "expo-robot")
    assert info.value.status == 0


async def test_malformed_data_is_a_read_error_that_does_not_echo_the_body() -> None:
    leaky = "not-base64-but-secret-looking-text!!"
    kube = Api(httpx.Response(200, json=secret_json({"token": leaky}))).kube()
    with pytest.raises(SecretReadError) as info:
        await kube.read_secret("team-a", "expo-robot")
    assert "malformed Secret" in str(info.value)
    assert leaky not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


async def test_names_are_quoted_into_the_path() -> None:
    api = Api(httpx.Response(404))
    assert await api.kube().read_secret("team-a", "a/../../b") is None
    assert api.requests[0].url.raw_path == b"/api/v1/namespaces/team-a/secrets/a%2F..%2F..%2Fb"


async def test_repr_does_not_show_credentials() -> None:
    kube = Api(httpx.Response(404)).kube()
    assert repr(kube) == f"KubeApi({SERVER!r})"


async def test_built_from_kopf_connection_info() -> None:
    info = kopf.ConnectionInfo(server="http://127.0.0.1:8001", token="sa-token-from-login")
    api = Api(httpx.Response(200, json=secret_json({"k": base64.b64encode(b"v").decode()})))
    kube = KubeApi.from_connection_info(info, transport=httpx.MockTransport(api))
    try:
        assert await kube.read_secret("ns", "s") == SecretData({"k": b"v"}, "42")
    finally:
        await kube.aclose()
    assert api.requests[0].headers["authorization"] == "Bearer sa-token-from-login"
    assert str(api.requests[0].url) == "http://127.0.0.1:8001/api/v1/namespaces/ns/secrets/s"


# -- writes --------------------------------------------------------------------------------------------


async def test_a_status_write_carries_the_version_it_was_decided_on() -> None:
    api = Api(httpx.Response(200, json={"metadata": {"resourceVersion": "8"}}))
    kube = api.kube()
    await kube.patch_status("ns", "x", {"phase": "Building"}, resource_version="7")
    await kube.patch_status("ns", "x", {"phase": "Building"})
    guarded, unguarded = api.requests
    assert guarded.headers["content-type"] == "application/merge-patch+json"
    assert guarded.url.path.endswith("/namespaces/ns/publishingbuilds/x/status")
    assert guarded.content == b'{"status":{"phase":"Building"},"metadata":{"resourceVersion":"7"}}'
    assert b"resourceVersion" not in unguarded.content


async def test_a_lost_race_is_a_conflict() -> None:
    kube = Api(httpx.Response(409, json=status_json(409, "Conflict", "the object has been modified"))).kube()
    with pytest.raises(KubeError) as info:
        await kube.patch_status("ns", "x", {}, resource_version="7")
    assert info.value.conflict


async def test_a_failed_json_patch_test_is_a_conflict() -> None:
    answer = httpx.Response(
        422, json=status_json(422, "Invalid", "testing value /metadata/resourceVersion failed")
    )
    kube = Api(answer).kube()
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}, {"op": "remove", "path": "/x"}]
    with pytest.raises(KubeError) as info:
        await kube.patch_metadata("ns", "x", ops)
    assert info.value.conflict
    with pytest.raises(KubeError) as unguarded:
        await kube.patch_metadata("ns", "x", ops[1:])
    assert unguarded.value.status == 422


async def test_events_are_posted_to_the_core_api() -> None:
    api = Api(httpx.Response(201, json={}))
    await api.kube().create_event("team-a", {"reason": "BuildStarted"})
    assert api.requests[0].url.path == "/api/v1/namespaces/team-a/events"


# -- logging in again ----------------------------------------------------------------------------------


def rotating(
    valid_token: str, relogins: list[str], fresh_token: str = "new-token"
) -> tuple[KubeApi, list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {valid_token}":
            return httpx.Response(401, json={"kind": "Status", "message": "Unauthorized"})
        if "/secrets/" in request.url.path:
            return httpx.Response(
                200, json={"data": {"token": "dmFsdWU="}, "metadata": {"resourceVersion": "1"}}
            )
        return httpx.Response(200, json={"metadata": {"name": "x"}})

    def relogin() -> kopf.ConnectionInfo:
        relogins.append("again")
        return kopf.ConnectionInfo(server=SERVER, token=fresh_token, scheme="Bearer")

    client = httpx.AsyncClient(
        base_url=SERVER, headers={"Authorization": "Bearer old-token"}, transport=httpx.MockTransport(answer)
    )
    return KubeApi(client, relogin), seen


async def test_a_write_refused_with_401_logs_in_again_and_retries_once() -> None:
    relogins: list[str] = []
    api, seen = rotating("new-token", relogins)
    body = await api.patch_status("ns", "x", {"phase": "Queued"})
    assert body == {"metadata": {"name": "x"}}
    assert seen == ["Bearer old-token", "Bearer new-token"]
    assert relogins == ["again"]
    await api.patch_status("ns", "x", {"phase": "Building"})  # the new token stays
    assert seen[-1] == "Bearer new-token" and relogins == ["again"]
    await api.aclose()


async def test_a_secret_read_refused_with_401_logs_in_again() -> None:
    relogins: list[str] = []
    api, _ = rotating("new-token", relogins)
    assert await api.read_secret("ns", "expo-robot") == SecretData({"token": b"value"}, "1")
    assert relogins == ["again"]
    await api.aclose()


async def test_still_refused_after_logging_in_again_is_an_error_not_a_loop() -> None:
    relogins: list[str] = []
    api, seen = rotating("accepted-token", relogins, fresh_token="also-refused")
    with pytest.raises(KubeError) as info:
        await api.patch_status("ns", "x", {})
    assert info.value.status == 401
    assert seen == ["Bearer old-token", "Bearer also-refused"]
    assert relogins == ["again"]
    assert "also-refused" not in str(info.value)
    await api.aclose()
