"""Issue 15, tenancy: a PublishingBuild reaches only Secrets of its own namespace whatever its spec
names, and with watched namespaces set the operator touches nothing elsewhere. Checked against the
emulated API's journal of every request (publishing_testkit.kube_emulator.faults)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest

from publishing_operator.adapters.kube import KubeApi, SecretReadError
from publishing_testkit.kube_emulator import RequestRecord, load_manifests
from tests.fixtures.kube import CRDS_DIR, EXAMPLES_DIR, Kube
from tests.fixtures.operator import Stack, condition, phase, publishing_build

pytestmark = [
    pytest.mark.integration,
    pytest.mark.emulator_only(
        "fixed namespaces (tenant-a/b/c) and the emulator's thread; "
        "not yet adapted to the shared real API server"
    ),
]

HOSTILE_NAMES = [
    "../tenant-b/secrets/expo-robot",
    "tenant-b/expo-robot",
    "expo-robot/../../tenant-b/secrets/expo-robot",
    "..",
    ".",
    "..%2Ftenant-b%2Fsecrets%2Fexpo-robot",
    "%2e%2e",
    "expo-robot?watch=true",
    "expo-robot#x",
    "tenant-b:expo-robot",
    "../../../api/v1/namespaces/tenant-b/secrets/expo-robot",
]


def secrets_in(namespace: str) -> list[dict[str, Any]]:
    found = []
    for doc in load_manifests(EXAMPLES_DIR / "secrets.yaml"):
        placed = copy.deepcopy(doc)
        placed["metadata"]["namespace"] = namespace
        found.append(placed)
    return found


def namespaces(*names: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in names]


def operator_requests(journal: list[RequestRecord]) -> list[RequestRecord]:
    return [r for r in journal if r.agent.startswith(("publishing-operator", "kopf"))]


async def test_the_secret_reader_stays_in_its_namespace_whatever_the_name(kube: Kube) -> None:
    kube.apply(namespaces("tenant-a", "tenant-b"))
    kube.apply(secrets_in("tenant-b"))
    async with httpx.AsyncClient(base_url=kube.url, headers={"User-Agent": "publishing-operator"}) as http:
        api = KubeApi(http)
        for name in HOSTILE_NAMES:
            try:
                found = await api.read_secret("tenant-a", name)
            except SecretReadError:
                found = None
            assert found is None, f"{name!r} read {found}"
        assert await api.read_secret("tenant-b", "expo-robot") is not None  # the control: it is there
    reads = [r for r in operator_requests(kube.journal()) if r.method == "GET"]
    assert len(reads) >= len(HOSTILE_NAMES) - 2  # "." and ".." are never sent
    for record in reads[:-1]:
        assert (record.namespace, record.resource) == ("tenant-a", "secrets"), record


def lax_crd() -> list[dict[str, Any]]:
    """The CRD without the Expo token Secret's name pattern (an older or hand-edited CRD): only the
    operator's own checks stand between a hostile name and the Secret reader."""
    crds = load_manifests(CRDS_DIR)
    spec = crds[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    spec["expo"]["properties"]["tokenSecretRef"]["properties"]["name"].pop("pattern")
    return crds


async def test_a_spec_naming_another_namespace_reads_nothing_there(stack: Stack) -> None:
    stack.apply(*lax_crd())
    stack.apply(*namespaces("tenant-a", "tenant-b"))
    stack.apply(*secrets_in("tenant-a"), *secrets_in("tenant-b"))
    for index, name in enumerate(HOSTILE_NAMES[:4]):
        manifest = publishing_build(f"hostile-{index}", submit=False, expo={"tokenSecretRef": {"name": name}})
        manifest["metadata"]["namespace"] = "tenant-a"
        stack.apply(manifest)
    stack.operator()
    for index in range(4):
        done = await stack.wait(
            f"hostile-{index}", lambda o: phase(o) == "Failed", namespace="tenant-a", timeout=60
        )
        assert condition(done, "Succeeded")["reason"] == "InvalidSpec"
    assert stack.builds() == []
    for record in operator_requests(stack.kube.journal()):
        assert record.namespace in (None, "tenant-a"), record
        assert not (record.resource == "secrets" and record.namespace != "tenant-a"), record


# Cluster-wide requests kopf makes in namespaced mode: API discovery, and a list and watch of the
# Namespace objects and of CRDs (kopf's scanning: it notices namespaces and CRDs that come later;
# `settings.scanning.disabled` would drop both). Never a Secret, PublishingBuild or Event elsewhere.
KOPF_CLUSTER_WIDE = {"namespaces", "customresourcedefinitions"}
# The operator's own objects in its own namespace ("default" here): the release ledger (GitOps) and
# the leader-election Lease. Nothing else there.
OWN_OBJECTS = {("configmaps", "publishing-operator-releases"), ("leases", "publishing-operator")}


async def test_with_watched_namespaces_the_operator_touches_nothing_elsewhere(
    stack: Stack, tmp_path: Path
) -> None:
    stack.apply(*namespaces("tenant-a", "tenant-b", "tenant-c"))
    for namespace in ("tenant-a", "tenant-b", "tenant-c"):
        stack.apply(*secrets_in(namespace))
        manifest = publishing_build(f"in-{namespace}", submit=False)
        manifest["metadata"]["namespace"] = namespace
        stack.apply(manifest)
    stack.operator(namespaces="tenant-a,tenant-b", history_succeeded="0")
    for namespace in ("tenant-a", "tenant-b"):
        await stack.kube.wait_for(
            lambda o: o is None, "publishingbuilds", f"in-{namespace}", namespace, timeout=90
        )
    untouched = await stack.get("in-tenant-c", namespace="tenant-c")
    assert untouched is not None and "status" not in untouched
    assert len(stack.builds()) == 2
    requests = operator_requests(stack.kube.journal())
    assert requests, "the journal saw no operator request"
    for record in requests:
        if record.namespace is None:
            assert record.resource is None or record.resource in KOPF_CLUSTER_WIDE, record
            assert record.verb in ("get", "list", "watch"), record
        elif record.namespace == "default":
            assert (record.resource, record.name) in OWN_OBJECTS or (
                record.resource == "configmaps" and record.verb == "create"  # the ledger's first write
            ), record
        else:
            assert record.namespace in ("tenant-a", "tenant-b"), record
