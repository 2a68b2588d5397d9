"""The Kubernetes Secret reader (httpx, against a mock transport) and the redaction helper."""

from __future__ import annotations

import base64
import json

import httpx
import kopf
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from publishing_operator.credentials import REDACTED, KubernetesSecretReader, SecretReadError, redact

SECRET_VALUE = b"super-secret-value-0123456789"
BEARER = "Bearer sa-token-must-not-show-up-anywhere"


def secret_json(data: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "expo-robot", "namespace": "team-a"},
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

    def __init__(self, response: httpx.Response | Exception) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response

    def reader(self) -> KubernetesSecretReader:
        return KubernetesSecretReader(
            "https://kube.example:6443/",
            headers={"Authorization": BEARER},
            transport=httpx.MockTransport(self),
        )


async def test_reads_and_decodes_the_secret_data() -> None:
    api = Api(
        httpx.Response(200, json=secret_json({"token": base64.b64encode(SECRET_VALUE).decode(), "e": ""}))
    )
    async with api.reader() as reader:
        data = await reader.read_secret("team-a", "expo-robot")
    assert data == {"token": SECRET_VALUE, "e": b""}
    (request,) = api.requests
    assert request.method == "GET"
    assert str(request.url) == "https://kube.example:6443/api/v1/namespaces/team-a/secrets/expo-robot"
    assert request.headers["authorization"] == BEARER
    assert request.headers["accept"] == "application/json"


async def test_a_secret_without_data_is_empty() -> None:
    body = secret_json({})
    del body["data"]
    async with Api(httpx.Response(200, json=body)).reader() as reader:
        assert await reader.read_secret("team-a", "expo-robot") == {}


async def test_not_found_is_none() -> None:
    api = Api(httpx.Response(404, json=status_json(404, "NotFound", 'secrets "expo-robot" not found')))
    async with api.reader() as reader:
        assert await reader.read_secret("team-a", "expo-robot") is None


async def test_forbidden_is_a_read_error_with_the_api_reason() -> None:
    message = (
        'secrets "expo-robot" is forbidden: User "system:serviceaccount:ops:op" cannot get resource "secrets"'
    )
    api = Api(httpx.Response(403, json=status_json(403, "Forbidden", message)))
    async with api.reader() as reader:
        with pytest.raises(SecretReadError) as info:
            await reader.read_secret("team-a", "expo-robot")
    assert info.value.status == 403
    assert (info.value.namespace, info.value.name) == ("team-a", "expo-robot")
    assert str(info.value) == f'cannot read Secret "expo-robot" in namespace "team-a": HTTP 403: {message}'


async def test_server_error_without_status_body() -> None:
    async with Api(httpx.Response(503, text="upstream unavailable")).reader() as reader:
        with pytest.raises(SecretReadError, match=r"HTTP 503$") as info:
            await reader.read_secret("team-a", "expo-robot")
    assert info.value.status == 503


async def test_transport_error_is_a_read_error() -> None:
    async with Api(httpx.ConnectError("connection refused")).reader() as reader:
        with pytest.raises(SecretReadError, match="ConnectError") as info:
            await reader.read_secret("team-a", "expo-robot")
    assert info.value.status is None


async def test_malformed_data_is_a_read_error_that_does_not_echo_the_body() -> None:
    leaky = "not-base64-but-secret-looking-text!!"
    async with Api(httpx.Response(200, json=secret_json({"token": leaky}))).reader() as reader:
        with pytest.raises(SecretReadError) as info:
            await reader.read_secret("team-a", "expo-robot")
    assert "malformed Secret" in str(info.value)
    assert leaky not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


async def test_names_are_quoted_into_the_path() -> None:
    api = Api(httpx.Response(404))
    async with api.reader() as reader:
        assert await reader.read_secret("team-a", "a/../../b") is None
    assert api.requests[0].url.raw_path == b"/api/v1/namespaces/team-a/secrets/a%2F..%2F..%2Fb"


async def test_repr_does_not_show_credentials() -> None:
    async with Api(httpx.Response(404)).reader() as reader:
        assert repr(reader) == "KubernetesSecretReader('https://kube.example:6443')"
        assert "sa-token" not in repr(reader)


async def test_built_from_kopf_connection_info() -> None:
    info = kopf.ConnectionInfo(server="http://127.0.0.1:8001", token="sa-token-from-login")
    api = Api(httpx.Response(200, json=secret_json({"k": base64.b64encode(b"v").decode()})))
    reader = KubernetesSecretReader.from_connection_info(info, transport=httpx.MockTransport(api))
    try:
        assert await reader.read_secret("ns", "s") == {"k": b"v"}
    finally:
        await reader.aclose()
    assert api.requests[0].headers["authorization"] == "Bearer sa-token-from-login"
    assert str(api.requests[0].url) == "http://127.0.0.1:8001/api/v1/namespaces/ns/secrets/s"

    tls = kopf.ConnectionInfo(server="https://kube.example:6443", insecure=True, token="t")
    tls_reader = KubernetesSecretReader.from_connection_info(tls)
    await tls_reader.aclose()


# -- redact ----------------------------------------------------------------------------------------


def test_redacts_values_and_their_encodings() -> None:
    token = "expo_token_abcdef0123456789"
    b64 = base64.b64encode(token.encode()).decode()
    text = f"auth failed for {token}; header was Basic {b64}; url-safe {b64.rstrip('=')}"
    out = redact(text, [token])
    assert token not in out
    assert b64.rstrip("=") not in out
    assert out == f"auth failed for {REDACTED}; header was Basic {REDACTED}; url-safe {REDACTED}"


def test_redacts_pem_whole_json_escaped_and_line_by_line() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    body_lines = [line for line in pem.splitlines() if not line.startswith("-----")]
    document = json.dumps({"private_key": pem})
    texts = [f"key: {pem}", f"payload {document}", f"parse error near {body_lines[1]!r}"]
    for text in texts:
        out = redact(text, [pem])
        for line in body_lines:
            assert line not in out, text
        assert REDACTED in out


def test_redact_leaves_short_and_empty_values_and_other_text_alone() -> None:
    assert redact("a b c abc", ["", "a", "abc"]) == "a b c abc"
    assert redact("nothing secret here", ["expo_token_abcdef0123456789"]) == "nothing secret here"


def test_redact_prefers_the_longest_match() -> None:
    long, short = "secret-part-one-and-part-two", "secret-part-one"
    assert redact(f"{long} / {short}", [short, long]) == f"{REDACTED} / {REDACTED}"
