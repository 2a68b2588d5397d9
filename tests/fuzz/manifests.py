"""Hypothesis strategies for PublishingBuild manifests: valid ones, and valid ones with hostile
mutations (wrong types, numbers and durations at and past their limits, unicode, huge strings,
missing fields, unknown fields)."""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import strategies as st

PROJECT_ID = "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90"
INT64 = 2**63

# Durations at the edges of the pattern, the ceilings (24h, 168h), Go's range and its precision.
DURATIONS = [
    "0s",
    "0ms",
    "1ms",
    "0.5ms",
    "0.0000005s",
    "0.0000000001ms",
    "1s",
    "2s",
    "90s",
    "1m30s",
    "1h30m",
    "10m",
    "24h",
    "24h1ms",
    "25h",
    "168h",
    "10080m",
    "168h0.5s",
    "169h",
    "2562047h",
    "2562048h",
    "87600000h",
    "9999999999999999999h",
    "1.5h",
    "01s",
    "1e3s",
    "1 s",
    "-1s",
    "1d",
    "",
    "s",
    "1.s",
]
NUMBERS = [
    0,
    -1,
    1,
    2,
    3,
    10,
    11,
    2**31 - 1,
    2**31,
    2**53,
    2**53 + 1,
    INT64 - 1,
    INT64,
    2**70,
    -(2**70),
    0.0,
    0.5,
    1.0,
    2.0,
    9.5,
    10.0,
    10.5,
    1e300,
    -1e300,
    1e-300,
]
STRINGS = [
    "",
    " ",
    "a",
    "a" * 64,
    "a" * 65,
    "a" * 253,
    "a" * 254,
    "a" * 4001,
    "é" * 5000,
    "\u202eevil",
    "\x00",
    "😀" * 40,
    "../etc",
    "a/../b",
    "./a",
    "a//b",
    "refs/tags/v1",
    "ns/name",
    "kube-system",
    "UPPER",
    "with space",
    "1234567890",
    "1" * 31,
    "https://x.example/a.tgz",
    "http://169.254.169.254/",
    "0f" * 32,
    "production",
    "ios",
    "android",
    "IOS",
    "inProgress",
    "true",
    "null",
]

text = st.text(max_size=40)
hostile = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(STRINGS),
    st.sampled_from(DURATIONS),
    text,
    st.lists(st.sampled_from([1, "a", None]), max_size=3),
    st.dictionaries(
        st.sampled_from(["name", "key", "x", "ref"]), st.sampled_from(["a", 1, None]), max_size=2
    ),
)

# Dotted paths inside the spec that a mutation may touch.
PATHS = [
    "app",
    "app.projectId",
    "app.platform",
    "app.profile",
    "app.buildVersion",
    "source",
    "source.github",
    "source.github.ref",
    "source.github.baseDirectory",
    "source.archive",
    "source.archive.url",
    "source.archive.sha256",
    "source.archive.projectRootDirectory",
    "source.archive.workflow",
    "expo",
    "expo.tokenSecretRef",
    "expo.tokenSecretRef.name",
    "expo.tokenSecretRef.key",
    "signing",
    "signing.secretRef.name",
    "submit",
    "submit.ios",
    "submit.ios.ascAppId",
    "submit.ios.apiKeySecretRef.name",
    "submit.ios.testflightGroups",
    "submit.ios.changelog",
    "submit.android",
    "submit.android.track",
    "submit.android.releaseStatus",
    "submit.android.rollout",
    "submit.android.changesNotSentForReview",
    "submit.android.serviceAccountKeySecretRef.name",
    "submit.android.changelog",
    "retry",
    "retry.maxAttempts",
    "retry.backoff",
    "retry.backoff.initial",
    "retry.backoff.factor",
    "retry.backoff.max",
    "timeouts",
    "timeouts.build",
    "timeouts.submit",
    "ttlSecondsAfterFinished",
    "cancel",
    "unknownField",
]
DURATION_PATHS = {"retry.backoff.initial", "retry.backoff.max", "timeouts.build", "timeouts.submit"}


@st.composite
def valid_spec(draw: st.DrawFn) -> dict[str, Any]:
    platform = draw(st.sampled_from(["ios", "android"]))
    spec: dict[str, Any] = {
        "app": {"projectId": PROJECT_ID, "platform": platform},
        "expo": {"tokenSecretRef": {"name": draw(st.sampled_from(["expo-robot", "a", "robot.token"]))}},
    }
    if draw(st.booleans()):
        spec["app"]["profile"] = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True))
    if draw(st.booleans()):
        version = draw(st.from_regex(r"[0-9]{1,9}", fullmatch=True))
        spec["app"]["buildVersion"] = version
    if draw(st.integers(0, 4)):
        spec["source"] = {"github": {"ref": draw(st.from_regex(r"[A-Za-z0-9/._-]{1,40}", fullmatch=True))}}
        if draw(st.booleans()):
            spec["source"]["github"]["baseDirectory"] = draw(
                st.sampled_from(["apps/mobile", "a", "a/b-c/d_e"])
            )
    else:
        spec["source"] = {"archive": {"url": "https://artifacts.example.com/m.tar.gz"}}
        if platform == "android" and draw(st.booleans()):
            spec["signing"] = {"secretRef": {"name": "mobile-android-signing"}}
    if draw(st.booleans()):
        if platform == "ios":
            spec["submit"] = {"ios": {"ascAppId": "1234567890", "apiKeySecretRef": {"name": "asc-api-key"}}}
        else:
            spec["submit"] = {"android": {"serviceAccountKeySecretRef": {"name": "play-publisher"}}}
    if draw(st.booleans()):
        spec["retry"] = {
            "maxAttempts": draw(st.integers(1, 10)),
            "backoff": {
                "initial": draw(st.sampled_from(["1s", "2s", "500ms"])),
                "factor": draw(st.floats(1, 10)),
                "max": draw(st.sampled_from(["10m", "24h", "2s"])),
            },
        }
    if draw(st.booleans()):
        spec["timeouts"] = {"build": draw(st.sampled_from(["2h", "168h", "1s"])), "submit": "1h"}
    if draw(st.booleans()):
        spec["ttlSecondsAfterFinished"] = draw(st.integers(0, 2**31 - 1))
    return spec


def _set(spec: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = spec
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[last] = value


def _delete(spec: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    node: Any = spec
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


@st.composite
def hostile_spec(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with 0 to 3 hostile mutations."""
    spec = copy.deepcopy(draw(valid_spec()))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(PATHS))
        action = draw(st.sampled_from(["set", "set", "delete"]))
        if action == "delete":
            _delete(spec, path)
        elif path in DURATION_PATHS and draw(st.booleans()):
            _set(spec, path, draw(st.sampled_from(DURATIONS)))
        else:
            _set(spec, path, draw(hostile))
    return spec


def manifest(name: str, spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "publishing.dev/v1alpha1",
        "kind": "PublishingBuild",
        "metadata": {"name": name},
        "spec": spec,
    }


def as_the_api_decodes(value: Any) -> Any:
    """What the API server stores before validating: integers beyond int64 become floats, integral
    floats an int can hold become ints, null fields are dropped (none is nullable). Unknown fields
    are left: the models ignore them as pruning would."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -INT64 <= value < INT64 else float(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, list):
        return [as_the_api_decodes(item) for item in value]
    return {key: as_the_api_decodes(item) for key, item in value.items() if item is not None}
