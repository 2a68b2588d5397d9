"""The chart on a real kube-apiserver: the testkit's control plane (etcd + kube-apiserver 1.37 built
from Go modules, RBAC on, no controllers, so no pods). `helm install` creates every object; the
chart's ServiceAccount may do what the README's RBAC table lists and nothing more; with
watchNamespaces it cannot read a Secret elsewhere; and the operator, run as a process with a
kubeconfig holding that ServiceAccount's token (`kubectl create token`), drives the examples to
Succeeded: the RBAC is enough, and no more than enough.

Runs in the real-API-server pass (`make test-real`, PUBLISHING_TEST_API=real), on a control plane of
its own (the chart must create the CRD itself).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

if os.environ.get("PUBLISHING_TEST_API") != "real":
    pytest.skip(
        "the chart on a real kube-apiserver runs in the real-API-server pass (make test-real)",
        allow_module_level=True,
    )
pytest.importorskip("publishing_testkit.controlplane", reason="no control plane launcher in this tree")

from publishing_testkit.controlplane import ControlPlane
from publishing_testkit.controlplane import kubeconfig as kubeconfigs
from publishing_testkit.expo_simulator.server import SimulatorThread
from tests.chart.test_rbac import readme_rules
from tests.chart.tools import CHART, REPO_ROOT, helm, key, render
from tests.fixtures.operator import EXAMPLE_TOKEN, FAST_EXPO, FAST_OPERATOR

pytestmark = pytest.mark.timeout(1500)

RELEASE = NAMESPACE = "publishing-operator"
SA = "publishing-operator"
APPS, OTHER = "mobile", "games"  # a namespace with PublishingBuilds, and one without
Rule = tuple[str, str, frozenset[str]]


@pytest.fixture(scope="module")
def control_plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own. (Named like the integration tests' session fixture,
    which the real pass requires of every test it runs.)"""
    with ControlPlane() as plane:
        for namespace in (APPS, OTHER):
            plane.create_namespace(namespace)
        yield plane


def helm_on(plane: ControlPlane, *args: str, values: dict[str, Any] | None = None) -> str:
    assert plane.kubeconfig is not None
    return helm(*args, "--kubeconfig", str(plane.kubeconfig), values=values).stdout


def kubectl(plane: ControlPlane, *args: str, kubeconfig: Path | None = None, check: bool = True) -> str:
    """The control plane's kubectl (1.37), as the admin or with `kubeconfig`."""
    config = kubeconfig or plane.kubeconfig
    result = subprocess.run(
        [str(plane.binaries.kubectl), "--kubeconfig", str(config), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane) -> ControlPlane:
    helm_on(control_plane, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace")
    return control_plane


def test_helm_install_creates_every_object(installed: ControlPlane) -> None:
    expected = {key(doc) for doc in render()}
    assert len(expected) == 12  # with the release ledger's Role and RoleBinding
    for kind, namespace, name in sorted(expected):
        where = ["-n", namespace] if namespace else []
        kubectl(installed, "get", kind, name, *where, "-o", "name")
    manifest = helm_on(installed, "get", "manifest", RELEASE, "--namespace", NAMESPACE)
    assert {key(doc) for doc in yaml.safe_load_all(manifest) if doc} == expected
    established = kubectl(
        installed,
        "get",
        "crd",
        "publishingbuilds.publishing.dev",
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Established')].status}",
    )
    assert established == "True"


# -- what the ServiceAccount may do ---------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    resources: set[Rule]
    non_resource_urls: set[str]


def can_i_list(plane: ControlPlane, kubeconfig: Path, namespace: str) -> Allowed:
    """`kubectl auth can-i --list` as a ServiceAccount, parsed: (apiGroup, resource, verbs)."""
    out = kubectl(plane, "auth", "can-i", "--list", "-n", namespace, kubeconfig=kubeconfig)
    resources: set[Rule] = set()
    urls: set[str] = set()
    for line in out.splitlines()[1:]:
        match = re.match(r"^(\S+)?\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s*$", line)
        assert match, line
        resource, non_resource, names, verbs = match.groups()
        # Only the release ledger's rule is limited to a name (README: get, update on that one ConfigMap).
        assert not names.strip() or resource == "configmaps", f"a rule limited to names: {line}"
        if resource:  # plural.group/subresource
            qualified, _, subresource = resource.partition("/")
            plural, _, group = qualified.partition(".")
            name = f"{plural}/{subresource}" if subresource else plural
            resources.add((group, name, frozenset(verbs.split())))
        urls.update(non_resource.split())
    return Allowed(resources, urls)


def service_account_kubeconfig(plane: ControlPlane, path: Path, name: str = SA) -> Path:
    """A kubeconfig for a ServiceAccount of the release namespace, with a token from `kubectl create
    token` (the chart's by default)."""
    token = kubectl(plane, "-n", NAMESPACE, "create", "token", name, "--duration=1h").strip()
    document = kubeconfigs.kubeconfig(plane.url, plane.ca_pem, kubeconfigs.token_user(token), namespace=APPS)
    return kubeconfigs.write(path, document)


def granted_by_the_chart(plane: ControlPlane, tmp: Path, namespace: str) -> Allowed:
    """What the chart's ServiceAccount may do in `namespace`, less what any authenticated user may
    (system:basic-user, discovery, ClusterTrustBundles ...: the baseline of a ServiceAccount with no
    binding, asked the same way)."""
    kubectl(plane, "-n", NAMESPACE, "create", "serviceaccount", "nobody", check=False)
    baseline = can_i_list(plane, service_account_kubeconfig(plane, tmp / "nobody", "nobody"), namespace)
    chart = can_i_list(plane, service_account_kubeconfig(plane, tmp / "chart"), namespace)
    return Allowed(chart.resources - baseline.resources, chart.non_resource_urls - baseline.non_resource_urls)


def merged(rules: set[Rule]) -> set[Rule]:
    """One rule per (group, resource), its verbs united (kubectl lists them that way)."""
    by_resource: dict[tuple[str, str], set[str]] = {}
    for group, resource, verbs in rules:
        by_resource.setdefault((group, resource), set()).update(verbs)
    return {(group, resource, frozenset(verbs)) for (group, resource), verbs in by_resource.items()}


def test_service_account_may_do_what_the_readme_lists_and_nothing_more(
    installed: ControlPlane, tmp_path: Path
) -> None:
    table = readme_rules()
    in_apps = granted_by_the_chart(installed, tmp_path, APPS)
    assert in_apps.resources == merged(table["watched"] | table["cluster"])
    assert in_apps.non_resource_urls == set()
    in_release = granted_by_the_chart(installed, tmp_path, NAMESPACE)
    assert merged(in_release.resources) == merged(  # the ledger's create and its name-limited get, update
        table["watched"] | table["cluster"] | table["release-namespace"] | table["release-ledger"]
    )
    for group, resource, verbs in in_apps.resources | in_release.resources:
        assert "*" not in (group, resource) and "*" not in verbs, (group, resource, verbs)
    # Not an admin: no RBAC writes, no ConfigMaps, no listing Secrets.
    config = service_account_kubeconfig(installed, tmp_path / "sa.kubeconfig")
    for verb, resource in (("create", "clusterroles"), ("get", "configmaps"), ("list", "secrets")):
        asked = ("auth", "can-i", verb, resource, "-n", APPS)
        assert kubectl(installed, *asked, kubeconfig=config, check=False).strip() == "no", asked


def drive_to_succeeded(plane: ControlPlane, tmp: Path, manifests: list[Path], **settings: str) -> str:
    """Run the operator as a process with the chart's ServiceAccount token, apply `manifests` into
    APPS, wait until every PublishingBuild there Succeeded; return the operator's log."""
    config = service_account_kubeconfig(plane, tmp / "sa.kubeconfig")
    log_path = tmp / "operator.log"
    with SimulatorThread(tokens={EXAMPLE_TOKEN}, config=FAST_EXPO) as expo:
        env = {
            **os.environ,
            **FAST_OPERATOR,
            **{f"PUBLISHING_{name.upper()}": value for name, value in settings.items()},
            "PUBLISHING_EXPO_API_URL": expo.graphql_url,
            "POD_NAMESPACE": NAMESPACE,  # as in its pod: its Lease and release ledger live there
        }
        with log_path.open("wb") as log:
            operator = subprocess.Popen(
                [sys.executable, "-m", "publishing_operator", "run", "--kubeconfig", str(config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            kubectl(plane, "-n", APPS, "apply", *(arg for path in manifests for arg in ("-f", str(path))))
            wait = ("-n", APPS, "wait", "--for=condition=Succeeded", "pb", "--all", "--timeout=120s")
            waited = subprocess.run(
                [str(plane.binaries.kubectl), "--kubeconfig", str(plane.kubeconfig), *wait],
                capture_output=True,
                text=True,
                timeout=150,
                check=False,
            )
            operator_log = log_path.read_text(errors="replace")
            assert waited.returncode == 0, waited.stderr + "\n--- operator log ---\n" + operator_log[-6000:]
            assert len(expo.state.describe_builds()) == len(manifests)
        finally:
            operator.terminate()
            operator.wait(timeout=60)
    return log_path.read_text(errors="replace")


def assert_no_permission_problem(operator_log: str) -> None:
    lowered = operator_log.lower()
    for symptom in ("forbidden", "not enough permissions", " 403"):
        assert symptom not in lowered, f"{symptom!r} in the operator log:\n{operator_log[-6000:]}"


def test_operator_as_the_service_account_drives_the_examples_to_succeeded(
    installed: ControlPlane, tmp_path: Path
) -> None:
    examples = REPO_ROOT / "examples"
    kubectl(installed, "-n", APPS, "apply", "-f", str(examples / "secrets.yaml"))
    manifests = [examples / "ios-testflight.yaml", examples / "android-play-internal.yaml"]
    assert_no_permission_problem(drive_to_succeeded(installed, tmp_path, manifests))
    reasons = kubectl(installed, "-n", APPS, "get", "events", "-o", "jsonpath={.items[*].reason}").split()
    assert {"BuildStarted", "Succeeded"} <= set(reasons)


def test_with_watch_namespaces_the_service_account_reads_no_secret_elsewhere(
    installed: ControlPlane, tmp_path: Path
) -> None:
    helm_on(
        installed,
        "upgrade",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        values={"watchNamespaces": [APPS]},
    )
    table = readme_rules()
    config = service_account_kubeconfig(installed, tmp_path / "sa.kubeconfig")
    for namespace, answer in ((APPS, "yes"), (OTHER, "no"), (NAMESPACE, "no"), ("default", "no")):
        got = kubectl(
            installed, "auth", "can-i", "get", "secrets", "-n", namespace, kubeconfig=config, check=False
        )
        assert got.strip() == answer, (namespace, got)
    in_apps = granted_by_the_chart(installed, tmp_path, APPS)
    assert in_apps.resources == merged(table["watched"] | table["cluster"] | table["namespaced-mode"])
    in_other = granted_by_the_chart(installed, tmp_path, OTHER)
    assert in_other.resources == merged(table["cluster"] | table["namespaced-mode"])


def test_with_watch_namespaces_the_operator_still_drives_a_build(
    installed: ControlPlane, tmp_path: Path
) -> None:
    """Runs after the upgrade above: a Role in APPS instead of the ClusterRole."""
    kubectl(installed, "-n", APPS, "delete", "pb", "--all")
    build = yaml.safe_load((REPO_ROOT / "examples" / "android-play-internal.yaml").read_text())
    build["metadata"]["name"] = "mobile-android-namespaced"
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(build))
    operator_log = drive_to_succeeded(installed, tmp_path, [path], namespaces=APPS)
    assert_no_permission_problem(operator_log)
