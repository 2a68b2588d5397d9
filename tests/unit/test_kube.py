"""KubeApi: a rotated token is picked up by logging in again once on 401, for writes and Secret reads."""

import httpx
import kopf
import pytest

from publishing_operator.credentials import KubernetesSecretReader
from publishing_operator.kube import KubeApi, KubeError

SERVER = "https://kube.example:6443"


def api_with(
    valid_token: str, relogins: list[str], fresh_token: str = "new-token"
) -> tuple[KubeApi, list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {valid_token}":
            return httpx.Response(401, json={"kind": "Status", "message": "Unauthorized"})
        if "/secrets/" in request.url.path:
            return httpx.Response(200, json={"data": {"token": "dmFsdWU="}})
        return httpx.Response(200, json={"metadata": {"name": "x"}})

    transport = httpx.MockTransport(answer)
    old = {"Authorization": "Bearer old-token"}
    client = httpx.AsyncClient(base_url=SERVER, headers=old, transport=transport)
    reader = KubernetesSecretReader(SERVER, headers=old, transport=transport)

    def relogin() -> kopf.ConnectionInfo:
        relogins.append("again")
        return kopf.ConnectionInfo(server=SERVER, token=fresh_token, scheme="Bearer")

    return KubeApi(client, reader, relogin), seen


async def test_a_write_refused_with_401_logs_in_again_and_retries_once() -> None:
    relogins: list[str] = []
    api, seen = api_with("new-token", relogins)
    body = await api.patch_status("ns", "x", {"phase": "Queued"})
    assert body == {"metadata": {"name": "x"}}
    assert seen == ["Bearer old-token", "Bearer new-token"]
    assert relogins == ["again"]
    await api.patch_status("ns", "x", {"phase": "Building"})  # the new token stays
    assert seen[-1] == "Bearer new-token" and relogins == ["again"]
    await api.aclose()


async def test_a_secret_read_refused_with_401_logs_in_again() -> None:
    relogins: list[str] = []
    api, _ = api_with("new-token", relogins)
    assert await api.read_secret("ns", "expo-robot") == {"token": b"value"}
    assert relogins == ["again"]
    await api.aclose()


async def test_still_refused_after_logging_in_again_is_an_error_not_a_loop() -> None:
    relogins: list[str] = []
    api, seen = api_with("accepted-token", relogins, fresh_token="also-refused")
    with pytest.raises(KubeError) as info:
        await api.patch_status("ns", "x", {})
    assert info.value.status == 401
    assert seen == ["Bearer old-token", "Bearer also-refused"]
    assert relogins == ["again"]
    assert "also-refused" not in str(info.value)
    await api.aclose()
