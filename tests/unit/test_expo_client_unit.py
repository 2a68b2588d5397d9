"""Client pieces without a server: error classification, backoff, parsing, models, odd answers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from publishing_operator.api import Platform, Workflow
from publishing_operator.expo.client import ExpoClient, _expo_release_status
from publishing_operator.expo.errors import (
    ErrorKind,
    ExpoTransientError,
    ExpoUnknownError,
    classify_graphql_error,
    classify_http_status,
    make_error,
)
from publishing_operator.expo.models import (
    AndroidSigning,
    AscApiKey,
    Build,
    IosSigning,
    SigningMaterial,
    Submission,
    UploadSession,
)
from publishing_operator.expo.transport import RetryPolicy, _graphql_url, _retry_after

TOKEN = "unit-token-93bd1c"


@pytest.mark.parametrize(
    ("code", "error_type", "transient", "status", "kind"),
    [
        ("EAS_BUILD_FREE_TIER_LIMIT_EXCEEDED", None, True, None, ErrorKind.USER),
        ("EAS_BUILD_FREE_TIER_DISABLED_IOS", "USER", True, None, ErrorKind.USER),
        ("UNAUTHORIZED_ERROR", "USER", False, None, ErrorKind.AUTH),
        (None, None, False, 401, ErrorKind.AUTH),
        ("ANYTHING", None, True, None, ErrorKind.TRANSIENT),
        ("EAS_BUILD_DOWN_FOR_MAINTENANCE", "USER", False, None, ErrorKind.TRANSIENT),
        (None, None, False, 503, ErrorKind.TRANSIENT),
        (None, None, False, 429, ErrorKind.TRANSIENT),
        ("VALIDATION_ERROR", None, False, None, ErrorKind.USER),
        ("X", "USER", False, None, ErrorKind.USER),
        (None, None, False, 400, ErrorKind.USER),
        ("X", "INTERNAL", False, None, ErrorKind.UNKNOWN),
    ],
)
def test_graphql_error_classification(
    code: str | None, error_type: str | None, transient: bool, status: int | None, kind: ErrorKind
) -> None:
    assert (
        classify_graphql_error(
            error_code=code, error_type=error_type, is_transient=transient, http_status=status
        )
        is kind
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, ErrorKind.AUTH), (429, ErrorKind.TRANSIENT), (500, ErrorKind.TRANSIENT), (404, ErrorKind.USER)],
)
def test_http_status_classification(status: int, kind: ErrorKind) -> None:
    assert classify_http_status(status) is kind


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(initial=1, factor=2, cap=5, jitter=0.5)
    rng = random.Random(1)
    for retry, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (10, 5)]:
        waits = [policy.backoff(retry, rng) for _ in range(50)]
        assert all(ceiling * 0.5 <= wait <= ceiling for wait in waits)
        assert len(set(waits)) > 1  # jitter spreads retries of many clients


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert _retry_after("7", lambda: now) == 7
    assert _retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), lambda: now) == 30
    assert _retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), lambda: now) == 0
    assert _retry_after("soon", lambda: now) is None
    assert _retry_after(None, lambda: now) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("inProgress", "IN_PROGRESS"),
        ("completed", "COMPLETED"),
        ("IN_PROGRESS", "IN_PROGRESS"),
        ("draft", "DRAFT"),
    ],
)
def test_release_status_to_expo(given: str, expected: str) -> None:
    assert _expo_release_status(given) == expected


def test_graphql_url_accepts_base_or_endpoint() -> None:
    assert _graphql_url("https://api.expo.dev") == "https://api.expo.dev/graphql"
    assert _graphql_url("http://127.0.0.1:9/") == "http://127.0.0.1:9/graphql"
    assert _graphql_url("https://api.expo.dev/graphql") == "https://api.expo.dev/graphql"


def test_error_text_names_operation_code_and_request_id() -> None:
    error = make_error(
        ErrorKind.TRANSIENT,
        "boom",
        operation="CreateIosBuild",
        error_code="X",
        request_id="r1",
        http_status=502,
        ambiguous=True,
        retry_after=3,
    )
    assert isinstance(error, ExpoTransientError)
    assert error.is_transient
    text = str(error)
    for part in (
        "boom",
        "CreateIosBuild",
        "code X",
        "HTTP 502",
        "request id r1",
        "retry after 3s",
        "look the result up",
    ):
        assert part in text


def test_secrets_stay_out_of_model_reprs() -> None:
    key = AscApiKey(key_p8="P8-SECRET", key_id="K", issuer_id="I")
    signing = SigningMaterial(
        ios=IosSigning(
            target_name="T", provisioning_profile_base64="PROF", p12_base64="P12", p12_password="PW"
        ),
        android=AndroidSigning(
            keystore_base64="KS", keystore_password="KSPW", key_alias="a", key_password="KPW"
        ),
    )
    session = UploadSession(url="https://storage/x?X-Goog-Signature=SIG", headers={}, bucketKey="b")
    shown = " ".join([repr(key), str(key), repr(signing), str(signing), repr(session), str(session)])
    for secret in ("P8-SECRET", "PROF", "P12", "PW", "KS", "KSPW", "KPW", "SIG"):
        assert secret not in shown
    assert signing.job_secrets(Platform.ANDROID) == {
        "buildCredentials": {
            "keystore": {
                "dataBase64": "KS",
                "keystorePassword": "KSPW",
                "keyAlias": "a",
                "keyPassword": "KPW",
            }
        }
    }
    ios = signing.job_secrets(Platform.IOS)["buildCredentials"][0]
    assert ios["distributionCertificate"] == {"dataBase64": "P12", "password": "PW"}
    with pytest.raises(ValueError, match="iOS signing"):
        SigningMaterial().job_secrets(Platform.IOS)


def test_build_model_from_expo_json() -> None:
    build = Build.model_validate(
        {
            "id": "b1",
            "status": "IN_QUEUE",
            "platform": "ANDROID",
            "queuePosition": 3,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "app": {"id": "a", "slug": "shop", "ownerAccount": {"name": "acme"}},
            "unknownNewField": 1,
        }
    )
    assert build.platform is Platform.ANDROID
    assert build.url == "https://expo.dev/accounts/acme/projects/shop/builds/b1"
    assert build.model_dump()["url"] == build.url


def _client(handler: Any) -> ExpoClient:
    async def no_sleep(seconds: float) -> None:
        return None

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ExpoClient(
        "https://api.example/graphql", TOKEN, http=http, sleep=no_sleep, retry=RetryPolicy(attempts=2)
    )


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>proxy page</html>"),
        httpx.Response(200, json={"data": None}),
        httpx.Response(200, json={"data": {"builds": {"byId": {"id": "b", "status": "SLEEPING"}}}}),
        httpx.Response(200, json={"data": {"builds": None}}),
    ],
)
async def test_odd_answers_are_unknown_errors(response: httpx.Response) -> None:
    async with _client(lambda request: response) as client:
        with pytest.raises(ExpoUnknownError) as caught:
            await client.get_build("b")
    assert TOKEN not in str(caught.value)


async def test_odd_upload_session_error_keeps_the_signed_url_out() -> None:
    signed = "https://storage.example/bucket/key?X-Goog-Signature=c2lnbmF0dXJl"
    answer = {"data": {"uploadSession": {"createUploadSession": {"url": signed, "headers": {}}}}}
    async with _client(lambda request: httpx.Response(200, json=answer)) as client:
        with pytest.raises(ExpoUnknownError) as caught:
            await client.create_upload_session()
    # Not even the fragments a truncated validation message would quote.
    for text in (str(caught.value), repr(caught.value)):
        assert "storage.example" not in text
        assert "dXJl" not in text


def test_submission_model_keeps_the_submitted_build_id() -> None:
    base = {
        "id": "s1",
        "status": "IN_QUEUE",
        "platform": "IOS",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "app": {"id": "a", "slug": "shop", "ownerAccount": {"name": "acme"}},
    }
    assert Submission.model_validate({**base, "submittedBuild": {"id": "b1"}}).submittedBuildId == "b1"
    assert Submission.model_validate({**base, "submittedBuild": None}).submittedBuildId is None
    assert Submission.model_validate(base).submittedBuildId is None


async def test_request_carries_bearer_token_and_operation_name() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": {"meActor": {"__typename": "User", "id": "u"}}})

    async with _client(handler) as client:
        actor = await client.whoami()
    assert actor.typename == "User"
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert b'"operationName":"MeActor"' in seen[0].content
    assert TOKEN not in repr(client)


async def test_null_actor_is_an_auth_error() -> None:
    async with _client(lambda request: httpx.Response(200, json={"data": {"meActor": None}})) as client:
        with pytest.raises(Exception, match="no actor") as caught:
            await client.whoami()
    assert getattr(caught.value, "kind", None) is ErrorKind.AUTH


async def test_request_key_is_bounded() -> None:
    async with _client(lambda request: httpx.Response(500)) as client:
        with pytest.raises(ValueError, match=r"1\.\.1024"):
            await client.create_archive_build(
                app_id="a",
                platform=Platform.IOS,
                profile="p",
                bucket_key="k",
                project_root_directory=".",
                workflow=Workflow.MANAGED,
                build_version=None,
                signing=None,
                request_key="x" * 1025,
            )
