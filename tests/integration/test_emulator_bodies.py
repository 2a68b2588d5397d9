"""Hostile request bodies through the emulated API: the answers kube-apiserver 1.37 gives (measured
against a real one; each case says what it answered), and never a 500.

Issue 15: an integer beyond int64, a non-string `apiVersion` and a deeply nested body were answered
500 with a traceback in the body.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.kube import Kube

pytestmark = [
    pytest.mark.integration,
    pytest.mark.emulator_only(
        "the emulator's own body limits (9 of its 35 cases answer otherwise on kube-apiserver: "
        "to be moved to tests/differential)"
    ),
]

PB = "/apis/publishing.dev/v1alpha1/namespaces/default/publishingbuilds"
PROJECT_ID = "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90"


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "publishing.dev/v1alpha1",
        "kind": "PublishingBuild",
        "metadata": {"name": name},
        "spec": {
            "app": {"projectId": PROJECT_ID, "platform": "ios"},
            "source": {"github": {"ref": "main"}},
            "expo": {"tokenSecretRef": {"name": "expo-robot"}},
            **spec,
        },
    }


def text(name: str, **spec: Any) -> str:
    return json.dumps(manifest(name, **spec))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


CASES: list[tuple[str, str | bytes, int, str]] = [
    # (id, body, kube-apiserver's status, a part of its message)
    ("integer beyond int64", text("a", ttlSecondsAfterFinished=2**70), 422, "must be of type"),
    ("negative integer beyond int64", text("b", ttlSecondsAfterFinished=-(2**70)), 422, "must be of type"),
    ("int64 max", text("c", ttlSecondsAfterFinished=2**63 - 1), 422, "less than or equal to 2147483647"),
    (
        "integral float is an integer",
        text("d").replace('"spec": {', '"spec": {"ttlSecondsAfterFinished": 1e3, '),
        201,
        "",
    ),
    (
        "float beyond 2**53 is not an integer",
        text("e", ttlSecondsAfterFinished=float(2**53)),
        422,
        "must be of type",
    ),
    (
        "number beyond float64",
        text("f").replace('"spec": {', '"spec": {"ttlSecondsAfterFinished": 1e400, '),
        400,
        "cannot unmarshal number 1e400",
    ),
    (
        "400-digit integer",
        text("g").replace('"spec": {', '"spec": {"ttlSecondsAfterFinished": ' + "9" * 400 + ", "),
        400,
        "cannot unmarshal number",
    ),
    ("unknown field beyond int64 is pruned", text("h", zzz=2**70), 201, ""),
    (
        "generation beyond int64",
        text("i").replace('"name": "i"', '"name": "i", "generation": 1e23'),
        400,
        "ObjectMeta.generation of type int64",
    ),
    (
        "NaN is not JSON",
        text("j").replace('"spec": {', '"spec": {"ttlSecondsAfterFinished": NaN, '),
        400,
        "invalid character 'N'",
    ),
    (
        "apiVersion a number",
        json.dumps({**manifest("k"), "apiVersion": 5}),
        400,
        "cannot unmarshal number into Go struct field .apiVersion of type string",
    ),
    ("apiVersion a list", json.dumps({**manifest("l"), "apiVersion": ["a"]}), 400, "cannot unmarshal array"),
    ("kind a number", json.dumps({**manifest("m"), "kind": 7}), 400, "Go struct field .kind of type string"),
    (
        "metadata a list",
        json.dumps({**manifest("n"), "metadata": [1]}),
        400,
        "cannot unmarshal array into Go value of type v1.ObjectMeta",
    ),
    (
        "name a number",
        json.dumps({**manifest("o"), "metadata": {"name": 5}}),
        400,
        "ObjectMeta.name of type string",
    ),
    (
        "labels with a number",
        json.dumps({**manifest("p"), "metadata": {"name": "p", "labels": {"a": 1}}}),
        400,
        "ObjectMeta.labels of type string",
    ),
    (
        "nested 100 deep in an unknown field",
        text("q").replace('"spec": {', '"spec": {"zzz": ' + nested(100) + ", "),
        201,
        "",
    ),
    (
        "nested beyond kube-apiserver's 10000",
        text("r").replace('"spec": {', '"spec": {"z": ' + nested(10_001) + ","),
        400,
        "exceeded max depth",
    ),
    ("nested 100000 deep", '{"a":' + nested(100_000) + "}", 400, "exceeded max depth"),
    ("a lone surrogate becomes U+FFFD", text("s").replace('"main"', '"\\ud800"'), 201, ""),
    ("invalid UTF-8 becomes U+FFFD", text("t").encode().replace(b'"main"', b'"\xff\xfe"'), 201, ""),
    (
        "duplicate keys: the last wins",
        text("u").replace(
            '"metadata": {"name": "u"}', '"metadata": {"name": "x"}, "metadata": {"name": "u"}'
        ),
        201,
        "",
    ),
    (
        "backoff of ten thousand years",
        text("v", retry={"backoff": {"max": "87600000h"}}),
        422,
        "Invalid value",
    ),
    ("timeout beyond Go's durations", text("w", timeouts={"build": "2562048h"}), 422, "Invalid value"),
    ("the longest timeout Go holds", text("x", timeouts={"build": "2562047h"}), 422, "must be at most 168h"),
]


@pytest.mark.parametrize(("body", "code", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_create_bodies_get_the_api_servers_answer(
    kube: Kube, body: str | bytes, code: int, message: str
) -> None:
    kube.apply_crds()
    status, answer = await kube.request("POST", PB, body)
    assert status == code, answer
    if code >= 400:
        assert answer["kind"] == "Status" and answer["code"] == code
        assert message in answer["message"]
        assert "Traceback" not in json.dumps(answer)


async def test_strings_are_stored_as_go_stores_them(kube: Kube) -> None:
    kube.apply_crds()
    await kube.request("POST", PB, text("s").replace('"main"', '"a\\ud800b"'))
    await kube.request("POST", PB, text("t").encode().replace(b'"main"', b'"a\xffb"'))
    for name in ("s", "t"):
        stored = await kube.get("publishingbuilds", name)
        assert stored is not None
        assert stored["spec"]["source"]["github"]["ref"] == "a\ufffdb"


APPLIED = "apiVersion: publishing.dev/v1alpha1\nkind: PublishingBuild\nmetadata:\n  name: patched\n"
PATCHES: list[tuple[str, str, str, int, str]] = [
    (
        "merge patch with an integer beyond int64",
        "application/merge-patch+json",
        json.dumps({"spec": {"cancel": 2**70}}),
        422,
        "must be of type boolean",
    ),
    (
        "merge patch setting apiVersion to a number",
        "application/merge-patch+json",
        json.dumps({"apiVersion": 3}),
        422,
        "patch: Invalid value",
    ),
    (
        "merge patch setting finalizers to a string",
        "application/merge-patch+json",
        json.dumps({"metadata": {"finalizers": "x"}}),
        422,
        "ObjectMeta.finalizers of type []string",
    ),
    (
        "merge patch nested beyond 10000",
        "application/merge-patch+json",
        '{"spec": {"z": ' + nested(10_001) + "}}",
        400,
        "",
    ),
    (
        "JSON patch nested beyond 10000",
        "application/json-patch+json",
        '[{"op": "add", "path": "/spec/z", "value": ' + nested(20_000) + "}]",
        400,
        "",
    ),
    (
        "apply patch with a YAML timestamp stays a string",
        "application/apply-patch+yaml",
        APPLIED + "  annotations:\n    when: 2024-01-01\n",
        200,
        "",
    ),
    (
        "apply patch: a billion laughs",
        "application/apply-patch+yaml",
        "a: &a [x,x,x,x,x,x,x,x,x]\n"
        + "".join(
            f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        400,
        "excessive aliasing",
    ),
    (
        "apply patch nested beyond 10000",
        "application/apply-patch+yaml",
        APPLIED + "spec:\n  z: " + nested(20_000) + "\n",
        400,
        "max depth",
    ),
    (
        "apply patch with a float infinity",
        "application/apply-patch+yaml",
        APPLIED + "spec:\n  x: .inf\n",
        400,
        "+Inf",
    ),
]


@pytest.mark.parametrize(
    ("content_type", "body", "code", "message"), [p[1:] for p in PATCHES], ids=[p[0] for p in PATCHES]
)
async def test_patch_bodies_are_refused_like_the_api_server_does(
    kube: Kube, content_type: str, body: str, code: int, message: str
) -> None:
    kube.apply_crds()
    status, created = await kube.request("POST", PB, text("patched"))
    assert status == 201, created
    params = "?fieldManager=test" if "apply" in content_type else ""
    status, answer = await kube.request("PATCH", f"{PB}/patched{params}", body, content_type=content_type)
    assert status == code, answer
    if code >= 400:
        assert message in answer["message"], answer
    elif "when" in body:
        assert answer["metadata"]["annotations"]["when"] == "2024-01-01"
