"""The rendered workload passes the security checks: non-root, read-only root filesystem, no
privilege escalation, no capabilities, seccomp RuntimeDefault (Pod Security Standard "restricted"),
plus resources, probes and a shutdown budget; for every value variant the tests render."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.tools import by_kind, one, render
from tests.chart.values import VARIANTS

pytestmark = pytest.mark.timeout(1500)


def pod_specs(variant: str) -> list[dict[str, Any]]:
    docs = render(VARIANTS[variant])
    workloads = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"}]
    assert workloads, "no workload rendered"
    return [d["spec"]["template"]["spec"] if d["kind"] != "Pod" else d["spec"] for d in workloads]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def effective(spec: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A security setting as Kubernetes applies it: the container's, else the pod's."""
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (spec.get("securityContext") or {}).get(key)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pods_are_restricted(variant: str) -> None:
    for spec in pod_specs(variant):
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        assert all("hostPath" not in volume for volume in spec.get("volumes", []))
        for container in containers(spec):
            context = container.get("securityContext") or {}
            name = container["name"]
            assert effective(spec, container, "runAsNonRoot") is True, name
            assert effective(spec, container, "runAsUser") not in (None, 0), name
            assert effective(spec, container, "seccompProfile") == {"type": "RuntimeDefault"}, name
            assert context.get("allowPrivilegeEscalation") is False, name
            assert context.get("readOnlyRootFilesystem") is True, name
            assert context.get("privileged") is not True, name
            assert context.get("capabilities", {}).get("drop") == ["ALL"], name
            assert not context.get("capabilities", {}).get("add"), name


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pods_have_resources_probes_and_a_writable_tmp(variant: str) -> None:
    for spec in pod_specs(variant):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
            assert container["resources"]["requests"]["cpu"]
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]]
            assert volumes[tmp["name"]]["emptyDir"]["sizeLimit"]
        assert spec["automountServiceAccountToken"] is True
        assert spec["enableServiceLinks"] is False


def test_one_replica_and_never_two_leading() -> None:
    """One replica by default; an upgrade starts the new pod as a standby (leader election), or
    stops the old one first when leader election is off."""
    deployment = one(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PUBLISHING_LEADER_ELECTION"] == "true"
    without = one(render({"settings": {"leaderElection": False}}), "Deployment")
    assert without["spec"]["strategy"] == {"type": "Recreate"}


def test_shutdown_fits_in_the_termination_grace() -> None:
    deployment = one(render(), "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PUBLISHING_SHUTDOWN_GRACE"] == "25s"
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 25


def test_no_object_lands_in_another_namespace_than_intended() -> None:
    """Namespaced objects go to the release namespace, or to a watched namespace (RBAC only)."""
    docs = render(VARIANTS["namespaced"], namespace="ops")
    for doc in docs:
        namespace = doc["metadata"].get("namespace")
        if doc["kind"] in {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}:
            assert namespace is None, doc["metadata"]
        elif doc["kind"] in {"Role", "RoleBinding"} and namespace in {"mobile", "games"}:
            assert not doc["metadata"]["name"].endswith("leader-election")
        else:
            assert namespace == "ops", (doc["kind"], doc["metadata"])
    assert by_kind(docs, "Namespace") == []
