"""No body makes the emulated API answer 5xx (issue 15: an integer beyond int64, a non-string
`apiVersion` and a deeply nested body were 500s with a traceback): arbitrary JSON and bytes, sent as
creates, replaces, every patch type and status writes, to a custom resource and to built-in kinds."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from publishing_testkit.kube_emulator import emulator_in_thread, load_manifests
from tests.fixtures.kube import CRDS_DIR
from tests.fuzz.manifests import NUMBERS, STRINGS, manifest

pytestmark = pytest.mark.fuzz

PB = "/apis/publishing.dev/v1alpha1/namespaces/default/publishingbuilds"
CM = "/api/v1/namespaces/default/configmaps"
_names = itertools.count()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(STRINGS),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
# Keys an object of the API is read by, so the values reach the decoders that matter.
top_level = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": json_values | st.just("publishing.dev/v1alpha1"),
        "kind": json_values | st.just("PublishingBuild"),
        "metadata": json_values
        | st.fixed_dictionaries(
            {"name": st.just("x")},
            optional={
                k: json_values
                for k in (
                    "labels",
                    "annotations",
                    "finalizers",
                    "generation",
                    "namespace",
                    "resourceVersion",
                    "creationTimestamp",
                    "ownerReferences",
                )
            },
        ),
        "spec": json_values,
        "status": json_values,
        "data": json_values,
        "stringData": json_values,
    },
)
raw_bodies = st.one_of(
    top_level.map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.integers(1, 12_000).map(lambda n: "[" * n + "]" * n),
    st.sampled_from(['{"a": NaN}', '{"a": 1e400}', "{" + '"a":' * 3 + "}", '{"a": "\\ud800"}', "", "null"]),
)


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with emulator_in_thread() as thread:
        manifests = load_manifests(CRDS_DIR)

        async def apply() -> None:
            await thread.handle.apply(manifests)

        thread.call(apply)
        with httpx.Client(base_url=thread.handle.url, timeout=30) as client:
            for collection, body in (
                (PB, manifest("target", {"app": {}})),
                (CM, {"metadata": {"name": "target"}}),
            ):
                client.post(collection, json=body)
            valid = {
                "app": {"projectId": "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90", "platform": "ios"},
                "source": {"github": {"ref": "main"}},
                "expo": {"tokenSecretRef": {"name": "expo-robot"}},
            }
            client.post(PB, json=manifest("target", valid)).raise_for_status()
            yield client


REQUESTS = [
    ("POST", PB, "application/json"),
    ("POST", PB, "application/yaml"),
    ("PUT", f"{PB}/target", "application/json"),
    ("PATCH", f"{PB}/target", "application/merge-patch+json"),
    ("PATCH", f"{PB}/target", "application/json-patch+json"),
    ("PATCH", f"{PB}/target?fieldManager=fuzz", "application/apply-patch+yaml"),
    ("PATCH", f"{PB}/target/status", "application/merge-patch+json"),
    ("PUT", f"{PB}/target/status", "application/json"),
    ("POST", CM, "application/json"),
    ("PATCH", f"{CM}/target", "application/strategic-merge-patch+json"),
    ("DELETE", f"{PB}/missing", "application/json"),
]


@given(body=raw_bodies, request=st.sampled_from(REQUESTS))
# An unknown field named by a control character: its Warning header once broke the connection.
@example(body='{"\\u001f": false}', request=REQUESTS[3])
def test_no_body_gets_a_5xx(api: httpx.Client, body: str, request: tuple[str, str, str]) -> None:
    method, path, content_type = request
    response = api.request(
        method, path, content=body.encode("utf-8", "surrogatepass"), headers={"Content-Type": content_type}
    )
    assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:2000]}"
    if response.status_code >= 400:
        status: Any = response.json()
        assert status["kind"] == "Status" and status["code"] == response.status_code
        assert "Traceback" not in response.text
