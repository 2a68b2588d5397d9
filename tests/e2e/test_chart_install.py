"""End to end on a real cluster: build the image, install the chart, run an iOS and an Android build
to Succeeded against the Expo simulator running in the cluster, uninstall.

Opt-in (marker `e2e`): it needs a Docker engine and a Kubernetes cluster, which CI machines lack.
On a laptop (README "End-to-end tests"):

    kind create cluster --name publishing-e2e
    PUBLISHING_E2E=1 E2E_KIND_CLUSTER=publishing-e2e .venv/bin/pytest -m e2e tests/e2e -rs

Any cluster works with `PUBLISHING_E2E=1 KUBECONFIG=...` when its nodes can use images from the
local Docker engine (Docker Desktop, or set E2E_IMAGE_REPOSITORY to a registry you can push to).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.chart.tools import CHART, REPO_ROOT, go_tool

if os.environ.get("PUBLISHING_E2E") != "1":
    pytest.skip(
        "e2e needs a Docker engine and a Kubernetes cluster (none here); "
        "run with PUBLISHING_E2E=1, see README 'End-to-end tests'",
        allow_module_level=True,
    )
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

OPERATOR_NS = "publishing-e2e-system"
BUILDS_NS = "publishing-e2e"
TOKEN = "fake-expo-robot-token-e9d3d3184c8d5d0dcc2bf5227544d51f"  # examples/secrets.yaml
TAG = "e2e"


def run(*args: str, input: str | None = None, timeout: float = 900) -> str:
    result = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def kubectl(*args: str, input: str | None = None, timeout: float = 300) -> str:
    return run("kubectl", *args, input=input, timeout=timeout)


def image(name: str) -> str:
    repository = os.environ.get("E2E_IMAGE_REPOSITORY")
    return f"{repository}/{name}:{TAG}" if repository else f"{name}:{TAG}"


def build_and_load(name: str, dockerfile: str) -> str:
    ref = image(name)
    run("docker", "build", "-f", str(REPO_ROOT / dockerfile), "-t", ref, str(REPO_ROOT), timeout=1800)
    if os.environ.get("E2E_IMAGE_REPOSITORY"):
        run("docker", "push", ref)
    elif cluster := os.environ.get("E2E_KIND_CLUSTER"):
        run("kind", "load", "docker-image", ref, "--name", cluster)
    return ref


SIMULATOR = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: expo-simulator, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: expo-simulator}}}}
  template:
    metadata: {{labels: {{app: expo-simulator}}}}
    spec:
      securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: simulator
          image: {image}
          imagePullPolicy: IfNotPresent
          args: [--token, {token}, --time-scale, "0.01"]
          ports: [{{containerPort: 8787}}]
          securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: expo-simulator, namespace: {ns}}}
spec:
  selector: {{app: expo-simulator}}
  ports: [{{port: 8787, targetPort: 8787}}]
"""


@pytest.fixture(scope="module")
def installed() -> Iterator[str]:
    for tool in ("docker", "kubectl"):
        assert shutil.which(tool), f"{tool} is needed"
    helm = str(go_tool("helm", "helm"))
    operator_image = build_and_load("publishing-operator", "Dockerfile")
    simulator_image = build_and_load("publishing-simulator", "tests/e2e/simulator.Dockerfile")
    for ns in (OPERATOR_NS, BUILDS_NS):
        kubectl("create", "namespace", ns)
    kubectl("label", "namespace", OPERATOR_NS, "pod-security.kubernetes.io/enforce=restricted")
    kubectl("apply", "-f", "-", input=SIMULATOR.format(ns=OPERATOR_NS, image=simulator_image, token=TOKEN))
    repository, _, tag = operator_image.rpartition(":")
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "watchNamespaces": [BUILDS_NS],
        "settings": {
            "expoApiUrl": f"http://expo-simulator.{OPERATOR_NS}.svc:8787/graphql",
            # The production floors: the simulator is a Service, not on loopback (no expoSimulator).
            "pollBuild": "10s",
            "pollSubmission": "5s",
            "logFormat": "plain",
        },
    }
    run(
        helm,
        "install",
        "publishing-operator",
        str(CHART),
        "--namespace",
        OPERATOR_NS,
        "--wait",
        "--timeout",
        "5m",
        "--values",
        "-",
        input=yaml.safe_dump(values),
    )
    try:
        yield helm
    finally:
        logs = subprocess.run(
            ["kubectl", "-n", OPERATOR_NS, "logs", "deployment/publishing-operator", "--tail=200"],
            capture_output=True,
            text=True,
            check=False,
        )
        print(logs.stdout[-6000:])
        subprocess.run(
            [helm, "uninstall", "publishing-operator", "--namespace", OPERATOR_NS, "--wait"], check=False
        )
        subprocess.run(
            ["kubectl", "delete", "namespace", BUILDS_NS, OPERATOR_NS, "--wait=false"], check=False
        )


def test_ios_and_android_builds_succeed_in_the_cluster(installed: str) -> None:
    examples = REPO_ROOT / "examples"
    kubectl("-n", BUILDS_NS, "apply", "-f", str(examples / "secrets.yaml"))
    kubectl(
        "-n",
        BUILDS_NS,
        "apply",
        "-f",
        str(examples / "ios-testflight.yaml"),
        "-f",
        str(examples / "android-play-internal.yaml"),
    )
    kubectl("-n", BUILDS_NS, "wait", "--for=condition=Succeeded", "pb", "--all", "--timeout=10m", timeout=700)
    builds = json.loads(kubectl("-n", BUILDS_NS, "get", "pb", "-o", "json"))["items"]
    assert {b["spec"]["app"]["platform"] for b in builds} == {"ios", "android"}
    assert all(b["status"]["phase"] == "Succeeded" for b in builds)


def test_uninstall_keeps_the_crd_and_the_builds(installed: str) -> None:
    run(installed, "uninstall", "publishing-operator", "--namespace", OPERATOR_NS, "--wait")
    deadline = time.monotonic() + 120
    while kubectl("-n", OPERATOR_NS, "get", "deployment", "--ignore-not-found", "-o", "name").strip():
        assert time.monotonic() < deadline, "the operator Deployment is still there"
        time.sleep(2)
    assert kubectl("get", "crd", "publishingbuilds.publishing.dev", "-o", "name").strip()
    assert len(json.loads(kubectl("-n", BUILDS_NS, "get", "pb", "-o", "json"))["items"]) == 2
