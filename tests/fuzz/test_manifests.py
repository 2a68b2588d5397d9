"""Issue 15: generated PublishingBuild manifests (valid, and valid with hostile mutations) sent through
the emulated API never get a 5xx, and the API's verdict equals the pydantic models' verdict: the CRD
refuses exactly what the operator would call an invalid spec, and what it accepts, the operator reads.

With a real API server (PUBLISHING_REAL_KUBECONFIG, e.g. `make cluster`'s kubeconfig, or the test
control plane when it is in the tree) the same bodies also go there: both servers give the same
verdict (accepted, or refused with the same status code), and neither answers 5xx.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import event, example, given
from pydantic import ValidationError

from publishing_operator.api import PublishingBuildSpec
from publishing_testkit.kube_emulator import EmulatorThread, emulator_in_thread, load_manifests
from tests.fixtures.kube import CRDS_DIR
from tests.fuzz.manifests import PROJECT_ID, as_the_api_decodes, hostile_spec, manifest, valid_spec

pytestmark = pytest.mark.fuzz

PB = "/apis/publishing.dev/v1alpha1/namespaces/default/publishingbuilds"
_names = itertools.count()


@pytest.fixture(scope="module")
def emulator() -> Iterator[httpx.Client]:
    with emulator_in_thread() as thread:
        _apply_crds(thread)
        with httpx.Client(base_url=thread.handle.url, timeout=30) as client:
            yield client


def _apply_crds(thread: EmulatorThread) -> None:
    manifests = load_manifests(CRDS_DIR)

    async def apply() -> None:
        await thread.handle.apply(manifests)

    thread.call(apply)


@pytest.fixture(scope="module")
def real_api() -> Iterator[httpx.Client | None]:
    """A real kube-apiserver with the CRDs applied, when one is configured; None otherwise."""
    kubeconfig = os.environ.get("PUBLISHING_REAL_KUBECONFIG")
    if not kubeconfig:
        yield None
        return
    with _client_from_kubeconfig(Path(kubeconfig)) as client:
        for crd in load_manifests(CRDS_DIR):  # this checkout's CRD, replacing any other version
            path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
            current = client.get(path)
            if current.status_code == 200:
                version = current.json()["metadata"]["resourceVersion"]
                answer = client.put(
                    path, json={**crd, "metadata": {**crd["metadata"], "resourceVersion": version}}
                )
            else:
                answer = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
            assert answer.status_code < 300, f"the real API server refused the CRD: {answer.text[:2000]}"
        yield client


def _client_from_kubeconfig(path: Path) -> httpx.Client:
    import base64
    import ssl
    import tempfile

    config = yaml.safe_load(path.read_text())
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    verify: ssl.SSLContext | bool = True
    if "certificate-authority-data" in cluster:
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as ca:
            ca.write(base64.b64decode(cluster["certificate-authority-data"]))
        verify = ssl.create_default_context(cafile=ca.name)
    headers = {"Authorization": f"Bearer {user['token']}"} if "token" in user else {}
    return httpx.Client(base_url=cluster["server"], verify=verify, headers=headers, timeout=30)


def model_accepts(spec: Any) -> bool:
    """The operator's models on the spec as the API decodes it, strictly typed as JSON is."""
    try:
        PublishingBuildSpec.model_validate_json(json.dumps(as_the_api_decodes(spec)), strict=True)
    except ValidationError:
        return False
    return True


def send(client: httpx.Client, spec: Any) -> tuple[int, dict[str, Any]]:
    name = f"fuzz-{next(_names)}"
    response = client.post(
        PB, content=json.dumps(manifest(name, spec)), headers={"Content-Type": "application/json"}
    )
    body = response.json() if response.content else {}
    if response.status_code == 201:
        client.delete(f"{PB}/{name}")
    return response.status_code, body


def verdict_of(code: int) -> str:
    return "accepted" if code == 201 else f"refused {code}"


@given(spec=hostile_spec())
@example(
    spec={
        "app": {"projectId": PROJECT_ID, "platform": "ios"},
        "source": {"github": {"ref": "main"}},
        "expo": {"tokenSecretRef": {"name": "expo-robot"}},
        "retry": {"backoff": {"max": "87600000h"}},
    }
)
@example(
    spec={
        "app": {"projectId": PROJECT_ID, "platform": "ios"},
        "source": {"github": {"ref": "main"}},
        "expo": {"tokenSecretRef": {"name": "expo-robot"}},
        "ttlSecondsAfterFinished": 2**70,
    }
)
@example(
    spec={
        "app": {"projectId": PROJECT_ID, "platform": "ios"},
        "source": {"github": {"ref": "main"}},
        "expo": {"tokenSecretRef": {"name": "expo-robot"}},
        "timeouts": {"submit": "0.0000005s"},
    }
)
def test_the_api_and_the_models_give_the_same_verdict(
    emulator: httpx.Client, real_api: httpx.Client | None, spec: Any
) -> None:
    code, body = send(emulator, spec)
    assert code < 500, body
    assert code in (201, 400, 422), body
    accepted = code == 201
    event(verdict_of(code))
    assert accepted == model_accepts(spec), (
        f"the API {verdict_of(code)}, the models {'accept' if model_accepts(spec) else 'refuse'}: "
        f"{json.dumps(spec)[:2000]}\n{body.get('message', '')[:1000]}"
    )
    if accepted:
        # What the operator reads back (defaults applied, unknown fields pruned) is a valid spec.
        PublishingBuildSpec.model_validate(body["spec"])
    if real_api is not None:
        real_code, real_body = send(real_api, spec)
        assert real_code < 500, real_body
        assert verdict_of(real_code) == verdict_of(code), (
            f"emulator {verdict_of(code)}: {body.get('message', '')[:600]}\n"
            f"kube-apiserver {verdict_of(real_code)}: {real_body.get('message', '')[:600]}\n"
            f"{json.dumps(spec)[:2000]}"
        )


@given(spec=valid_spec())
def test_every_valid_spec_is_accepted_by_both(emulator: httpx.Client, spec: dict[str, Any]) -> None:
    assert model_accepts(spec), spec
    code, body = send(emulator, spec)
    assert code == 201, body.get("message")
