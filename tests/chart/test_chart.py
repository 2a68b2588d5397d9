"""The Helm chart: lint, schema, the CRD it ships, the files it copies, NOTES.txt, values.yaml.

Rendered with the real Helm (built from its Go module by tests/tools/gobuild).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml

from publishing_operator.api import PublishingBuild
from tests.chart.tools import CHART, DEPLOY, REPO_ROOT, by_kind, helm, one, render, render_error, render_notes
from tests.chart.values import VARIANTS

pytestmark = pytest.mark.timeout(1500)  # the first test may build Helm (about 3 minutes cold)

CRD_FILE = REPO_ROOT / "crds" / "publishingbuild.yaml"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_strict(variant: str) -> None:
    result = helm("lint", "--strict", str(CHART), values=VARIANTS[variant])
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"settings": {"logFormt": "plain"}}, "additional properties 'logFormt' not allowed"),
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"metrics": {"serviceMonitor": {"enable": True}}}, "additional properties 'enable' not allowed"),
        ({"settings": {"pollBuild": 30}}, "/settings/pollBuild"),
        ({"settings": {"pollBuild": "30 seconds"}}, "/settings/pollBuild"),
        ({"settings": {"startRate": "five"}}, "/settings/startRate"),
        ({"settings": {"logFormat": "xml"}}, "/settings/logFormat"),
        ({"settings": {"healthPort": 0}}, "/settings/healthPort"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"securityContext": {"readOnlyRootFileSystem": True}}, "'readOnlyRootFileSystem' not allowed"),
        ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    ],
)
def test_a_wrong_value_fails_through_the_schema(values: dict[str, Any], message: str) -> None:
    assert message in render_error(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"replicaCount": 2, "settings": {"leaderElection": False}},
            "replicaCount > 1 needs settings.leaderElection",
        ),
        (
            {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}},
            "not both",
        ),
        ({"terminationGracePeriodSeconds": 25}, "must be longer than settings.shutdownGrace (25s)"),
        (
            {"settings": {"shutdownGrace": "1m"}, "terminationGracePeriodSeconds": 40},
            "must be longer than settings.shutdownGrace (1m)",
        ),
        ({"metrics": {"serviceMonitor": {"enabled": True}, "service": {"enabled": False}}}, "needs metrics"),
        ({"serviceAccount": {"create": False}}, "serviceAccount.name is required"),
    ],
)
def test_values_that_contradict_each_other_fail(values: dict[str, Any], message: str) -> None:
    assert message in render_error(values)


@pytest.mark.parametrize(
    ("shutdown_grace", "expected"), [("25s", 40), ("1m30s", 105), ("2.5s", 18), ("500ms", 16)]
)
def test_termination_grace_follows_the_shutdown_grace(shutdown_grace: str, expected: int) -> None:
    deployment = one(render({"settings": {"shutdownGrace": shutdown_grace}}), "Deployment")
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == expected


def test_default_render_has_exactly_the_expected_objects() -> None:
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in render())
    assert kinds == [
        ("ClusterRole", "publishing-operator"),
        ("ClusterRole", "publishing-operator-edit"),
        ("ClusterRole", "publishing-operator-view"),
        ("ClusterRoleBinding", "publishing-operator"),
        ("CustomResourceDefinition", "publishingbuilds.publishing.dev"),
        ("Deployment", "publishing-operator"),
        ("Role", "publishing-operator-leader-election"),
        ("Role", "publishing-operator-release-ledger"),
        ("RoleBinding", "publishing-operator-leader-election"),
        ("RoleBinding", "publishing-operator-release-ledger"),
        ("Service", "publishing-operator-metrics"),
        ("ServiceAccount", "publishing-operator"),
    ]


def test_all_toggles_render_their_objects() -> None:
    docs = render(VARIANTS["all-on"])
    kinds = {doc["kind"] for doc in docs}
    assert kinds >= {"ServiceMonitor", "PrometheusRule", "ConfigMap", "PodDisruptionBudget"}
    pod_monitor = one(render(VARIANTS["all-on-podmonitor"]), "PodMonitor")
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    dashboard = one(docs, "ConfigMap")
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Publishing"}
    deployment = one(docs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "publishing-operator@sha256:" + "0" * 64
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"} in container["env"]


def test_metrics_port_zero_drops_the_port_and_the_service() -> None:
    docs = render({"settings": {"metricsPort": 0}})
    assert by_kind(docs, "Service") == []
    ports = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [port["name"] for port in ports] == ["health"]


# -- the CRD -------------------------------------------------------------------------------------


def test_chart_crd_file_is_a_copy_of_crds() -> None:
    """`make manifests` refreshes it: the chart cannot read outside its own directory."""
    assert (CHART / "files" / "crds" / "publishingbuild.yaml").read_bytes() == CRD_FILE.read_bytes()


def test_rendered_crd_is_the_crd_plus_labels_and_the_keep_policy() -> None:
    source = yaml.safe_load(CRD_FILE.read_text())
    rendered = one(render(), "CustomResourceDefinition")
    meta = rendered["metadata"]
    assert meta["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert source["metadata"]["labels"].items() <= meta["labels"].items()
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    stripped = {**rendered, "metadata": {"name": meta["name"], "labels": source["metadata"]["labels"]}}
    assert stripped == source


def test_crd_keep_and_enabled_toggles() -> None:
    assert "annotations" not in one(render({"crds": {"keep": False}}), "CustomResourceDefinition")["metadata"]
    assert by_kind(render({"crds": {"enabled": False}}), "CustomResourceDefinition") == []


# -- versions and copied files -------------------------------------------------------------------


def test_app_version_is_the_operator_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


@pytest.mark.parametrize("relative", ["prometheus/alerts.yaml", "grafana/publishing-operator.json"])
def test_chart_monitoring_files_are_copies_of_deploy(relative: str) -> None:
    """deploy/ holds the alerts and the dashboard; the chart ships copies (`make manifests`).
    Until deploy/ has them, the chart holds a placeholder that says so."""
    copy, source = CHART / "files" / relative, DEPLOY / relative
    if source.exists():
        assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from {source}: run `make manifests`"
    else:
        assert "placeholder" in copy.read_text().lower()


def test_prometheus_rule_takes_the_groups_of_the_alerts_file() -> None:
    alerts = yaml.safe_load((CHART / "files" / "prometheus" / "alerts.yaml").read_text())
    groups = (alerts.get("spec") or alerts).get("groups") or []
    rule = one(render({"prometheusRule": {"enabled": True}}), "PrometheusRule")
    assert rule["spec"]["groups"] == groups


# -- NOTES.txt and values.yaml -------------------------------------------------------------------


def test_notes_first_build_is_a_valid_publishing_build() -> None:
    notes = render_notes()
    block = re.search(r"cat <<'YAML' \| kubectl -n (\S+) apply -f -\n(.*?)\n\s*YAML\n", notes, re.DOTALL)
    assert block is not None, notes
    manifest = block.group(2).replace("EAS_PROJECT_ID", "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90")
    manifest = manifest.replace("ASC_APP_ID", "1234567890")
    build = PublishingBuild.model_validate(yaml.safe_load(manifest))
    assert build.spec.expo.token_secret_ref.name == "expo-robot"
    for secret in ("expo-robot", "asc-api-key", "play-publisher"):
        assert f"create secret generic {secret}" in notes


def test_notes_name_the_watched_namespace() -> None:
    notes = render_notes({"watchNamespaces": ["mobile"]})
    assert "kubectl -n mobile create secret generic expo-robot" in notes
    assert "It serves PublishingBuilds in: mobile" in notes


# Kubernetes-typed blocks whose fields are Kubernetes' own (documented there, not per field here).
PASSTHROUGH = {"podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe"}


def test_every_value_has_a_comment() -> None:
    """Each value in values.yaml is preceded by a comment line. Block headers (`image:`) hold no
    value; children of Kubernetes-typed blocks share their block's comment."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    uncommented = []
    parents: list[tuple[int, str]] = []
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w.-]*):(.*)$", line)
        if not match:
            continue
        indent, name = len(match.group(1)), match.group(2)
        parents = [(i, n) for i, n in parents if i < indent]
        inherited = any(n in PASSTHROUGH for _, n in parents)
        previous = lines[number - 1].strip() if number else ""
        is_value = match.group(3).strip() != ""
        if is_value and not inherited and not previous.startswith("#"):
            uncommented.append(".".join([n for _, n in parents] + [name]))
        parents.append((indent, name))
    assert uncommented == [], uncommented


def test_two_replicas_elect_a_leader_and_roll_without_a_gap() -> None:
    """With leader election (the default) a second replica is a warm standby; an upgrade starts the
    new pod first, and it leads once the old one releases the Lease on SIGTERM."""
    manifests = render({"replicaCount": 2})
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in env
    (role,) = [
        m for m in manifests if m["kind"] == "Role" and m["metadata"]["name"].endswith("leader-election")
    ]
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    single = one(render({"settings": {"leaderElection": False}}), "Deployment")
    assert single["spec"]["strategy"] == {"type": "Recreate"}
    assert not [
        m
        for m in render({"settings": {"leaderElection": False}})
        if m["metadata"]["name"].endswith("leader-election")
    ]


def test_list_settings_are_comma_separated() -> None:
    deployment = one(
        render({"settings": {"archiveAllowedHosts": ["artifacts.internal", "10.1.0.0/16"]}}), "Deployment"
    )
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PUBLISHING_ARCHIVE_ALLOWED_HOSTS"] == "artifacts.internal,10.1.0.0/16"
