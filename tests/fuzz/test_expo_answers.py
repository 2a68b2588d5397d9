"""Hostile answers from Expo (a fake transport): malformed JSON, wrong types, huge payloads, unknown
enum values, absurd headers. Every client operation returns its typed result or raises a typed
`ExpoError` whose message is one bounded line, never anything else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from publishing_operator.api import Platform, Workflow
from publishing_operator.expo.client import ExpoClient
from publishing_operator.expo.errors import ExpoError
from publishing_operator.expo.models import AscApiKey, Build, Submission
from publishing_operator.expo.transport import RetryPolicy

pytestmark = pytest.mark.fuzz

MAX_MESSAGE = 2000  # an error's text ends up in status.message (4096 at most): it must stay short

BUILD = {
    "id": "b1",
    "status": "IN_QUEUE",
    "platform": "IOS",
    "buildProfile": "production",
    "message": "u.1",
    "gitRef": "main",
    "queuePosition": 3,
    "estimatedWaitTimeLeftSeconds": 40,
    "createdAt": "2026-01-01T00:00:00Z",
    "artifacts": {"buildUrl": "https://x/b"},
    "error": None,
    "app": {"id": "a", "slug": "s", "ownerAccount": {"name": "o"}},
    "initiatingActor": {"id": "actor"},
}
SUBMISSION = {
    "id": "s1",
    "status": "IN_PROGRESS",
    "platform": "IOS",
    "createdAt": "2026-01-01T00:00:00Z",
    "submittedBuild": {"id": "b1"},
    "error": None,
    "app": BUILD["app"],
}

# What each operation answers when all is well, with the place of its payload.
OPERATIONS: dict[
    str, tuple[Callable[[ExpoClient], Awaitable[Any]], dict[str, Any], type | tuple[type, ...]]
] = {
    "get_build": (lambda c: c.get_build("b1"), {"builds": {"byId": BUILD}}, Build),
    "get_builds": (
        lambda c: c.get_builds(["b1", "b2"]),
        {"b0": {"byId": BUILD}, "b1": {"byId": BUILD}},
        dict,
    ),
    "cancel_build": (lambda c: c.cancel_build("b1"), {"build": {"cancelBuild": BUILD}}, Build),
    "find_builds": (
        lambda c: c.find_builds(app_id="a", platform=Platform.IOS, profile="production"),
        {"app": {"byId": {"builds": [BUILD, BUILD]}}},
        list,
    ),
    "update_build_message": (
        lambda c: c.update_build_message("b1", "u.1"),
        {"build": {"updateBuildMetadata": BUILD}},
        Build,
    ),
    "create_github_build": (
        lambda c: c.create_github_build(
            app_id="a", platform=Platform.IOS, profile="p", git_ref="main", base_directory=None
        ),
        {"githubApp": {"createGitHubBuild": {"id": "r1"}}},
        str,
    ),
    "github_build_from_receipt": (
        lambda c: c.github_build_from_receipt("r1"),
        {"backgroundJobReceipt": {"byId": {"id": "r1", "state": "SUCCESS", "resultId": "b1"}}},
        (str, type(None)),
    ),
    "create_archive_build": (
        lambda c: c.create_archive_build(
            app_id="a",
            platform=Platform.IOS,
            profile="p",
            bucket_key="k",
            project_root_directory=".",
            workflow=Workflow.MANAGED,
            build_version=None,
            signing=None,
            request_key="u.1",
        ),
        {"build": {"createIosBuild": {"build": BUILD, "deprecationInfo": None}}},
        Build,
    ),
    "create_ios_submission": (
        lambda c: c.create_ios_submission(
            app_id="a",
            build_id="b1",
            asc_app_id="1",
            api_key=AscApiKey(key_p8="k", key_id="i", issuer_id="j"),
            groups=[],
            changelog=None,
        ),
        {"submission": {"createIosSubmission": {"submission": SUBMISSION}}},
        Submission,
    ),
    "get_submission": (lambda c: c.get_submission("s1"), {"submissions": {"byId": SUBMISSION}}, Submission),
    "build_submissions": (
        lambda c: c.build_submissions("b1"),
        {"builds": {"byId": {"submissions": [SUBMISSION]}}},
        list,
    ),
    "whoami": (lambda c: c.whoami(), {"meActor": {"id": "x", "__typename": "Robot", "accounts": []}}, object),
}

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        ["AWAITING_RETRY", "", "x" * 100_000, "IN_QUEUE", "FINISHED", "-1", "2026-13-45T99:00:00Z"]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copied = json.loads(json.dumps(value))
    node = copied
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return copied


@st.composite
def answers(draw: st.DrawFn, data: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """An HTTP answer: a good one with a field replaced by junk, or worse."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "errors", "malformed", "shape", "huge"]))
    status = draw(st.sampled_from([200, 200, 200, 400, 401, 404, 429, 500, 502, 503]))
    headers = draw(
        st.dictionaries(
            st.just("retry-after"),
            st.sampled_from(["1e309", "-1", "nan", "abc", "99999999999", "2", ""]),
            max_size=1,
        )
    )
    if kind == "mutated":
        path = draw(st.sampled_from(_paths(data)))
        body: Any = {"data": _replace(data, path, draw(junk))}
    elif kind == "errors":
        error = draw(
            st.one_of(
                junk,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "message": junk,
                        "extensions": st.one_of(
                            junk,
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "errorCode": junk,
                                    "errorType": junk,
                                    "isTransient": junk,
                                    "requestId": junk,
                                },
                            ),
                        ),
                    },
                ),
            )
        )
        body = {
            "data": draw(st.one_of(st.none(), st.just(data))),
            "errors": draw(st.one_of(junk, st.just([error]))),
        }
    elif kind == "shape":
        body = draw(junk)
    elif kind == "huge":
        return status, headers, json.dumps({"data": data, "padding": "x" * 3_000_000}).encode()
    else:
        return status, headers, draw(st.sampled_from([b"", b"{", b"<html>502</html>", b"\xff\xfe", b"null"]))
    return status, headers, json.dumps(body).encode()


async def call(operation: str, answer: tuple[int, dict[str, str], bytes]) -> Any:
    status, headers, content = answer

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, content=content)

    async def no_sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    http = httpx.AsyncClient(transport=httpx.MockTransport(respond))
    client = ExpoClient(
        "https://expo.invalid/graphql",
        "token",
        http=http,
        sleep=no_sleep,
        retry=RetryPolicy(attempts=2),
    )
    try:
        return await OPERATIONS[operation][0](client)
    finally:
        await http.aclose()


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_good_answer_gives_the_typed_result(operation: str) -> None:
    _, data, expected = OPERATIONS[operation]
    result = asyncio.run(call(operation, (200, {}, json.dumps({"data": data}).encode())))
    assert isinstance(result, expected)


@given(operation=st.sampled_from(sorted(OPERATIONS)), data=st.data())
def test_a_hostile_answer_gives_a_typed_error_or_a_typed_result(operation: str, data: st.DataObject) -> None:
    _, good, expected = OPERATIONS[operation]
    answer = data.draw(answers(good))
    try:
        result = asyncio.run(call(operation, answer))
    except ExpoError as exc:
        error: ExpoError | None = exc
    else:
        error = None
        assert isinstance(result, expected), result
    if error is not None:
        text = str(error)
        assert "\n" not in text and len(text) <= MAX_MESSAGE, text[:300]
        assert error.retry_after is None or 0 <= error.retry_after <= 3600, error.retry_after


def test_an_answer_larger_than_the_cap_is_refused_unread() -> None:
    huge = json.dumps({"data": {"builds": {"byId": {**BUILD, "message": "x" * (17 * 2**20)}}}}).encode()
    with pytest.raises(ExpoError, match="larger than 16 MiB"):
        asyncio.run(call("get_build", (200, {}, huge)))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("-1", 0.0),
        ("1e309", 3600.0),
        ("99999999999", 3600.0),
        ("nan", None),
        ("abc", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600.0),
    ],
)
def test_retry_after_is_bounded(header: str, seconds: float | None) -> None:
    with pytest.raises(ExpoError) as caught:
        asyncio.run(call("get_build", (429, {"retry-after": header}, b"")))
    assert caught.value.retry_after == seconds


def test_unknown_states_are_kept_known_ones_are_members() -> None:
    from publishing_operator.expo.models import EasBuildState, EasSubmissionState

    assert not EasBuildState("AWAITING_RETRY").known and EasBuildState("FINISHED").known
    assert EasSubmissionState("IN_REVIEW").value == "IN_REVIEW"
    for junk in ("lower", "", "X" * 65, "A-B"):
        with pytest.raises(ValueError, match="is not a valid"):
            EasBuildState(junk)
