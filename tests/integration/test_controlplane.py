"""The real control plane itself (PUBLISHING_TEST_API=real): versions that tell the truth, the two
admin logins, `kubectl create token`, and a stop that leaves nothing behind."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.kube import CRDS_DIR, Kube

if TYPE_CHECKING:
    from publishing_testkit.controlplane import ControlPlane

pytestmark = [pytest.mark.integration, pytest.mark.real_only("it tests the real control plane's launcher")]


def test_kubectl_and_the_server_report_the_release_they_were_built_from(kube: Kube) -> None:
    versions = json.loads(kube.kubectl("version", "-o", "json").stdout)
    client, server = versions["clientVersion"], versions["serverVersion"]
    assert client["gitVersion"] == server["gitVersion"] and server["gitVersion"].startswith("v1.")
    assert server["minor"] == server["gitVersion"].split(".")[1]


def test_the_admin_by_token_and_by_client_certificate(kube: Kube) -> None:
    by_token = json.loads(kube.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert by_token["username"] == "admin" and "system:masters" in by_token["groups"]
    by_cert = json.loads(kube.kubectl("--context", "admin-cert", "auth", "whoami", "-o", "json").stdout)
    assert by_cert["status"]["userInfo"]["username"] == "admin"


def test_kubectl_create_token_issues_a_serviceaccount_token_that_authenticates(kube: Kube) -> None:
    kube.kubectl("create", "serviceaccount", "bot")
    token = kube.kubectl("create", "token", "bot", "--duration=10m").stdout.strip()
    whoami = json.loads(kube.kubectl("--token", token, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{kube.namespace}:bot"


def test_a_second_control_plane_starts_and_stops_without_a_trace(control_plane: ControlPlane) -> None:
    from publishing_testkit.controlplane import ControlPlane

    started = time.monotonic()
    with ControlPlane(control_plane.binaries) as plane:
        ready = time.monotonic() - started
        workdir, children = plane.workdir, list(plane._children)
        assert plane.running and workdir is not None and workdir.exists()
        assert plane.url != control_plane.url
        assert (
            plane.kubectl("get", "namespace", "default", "-o", "name").stdout.strip() == "namespace/default"
        )
    assert not workdir.exists()
    assert all(child.process.poll() is not None for child in children)
    assert ready < 120


def test_the_crds_install_within_the_cel_cost_budget_and_without_warnings(kube: Kube) -> None:
    # The session installed crds/ already (kube-apiserver estimates every CEL rule's cost and
    # refuses a CRD over budget); a server-side dry run of a fresh create says so again, warnings too.
    crd = kube.kubectl("get", "crd", "publishingbuilds.publishing.dev", "-o", "json").stdout
    conditions = {c["type"]: c["status"] for c in json.loads(crd)["status"]["conditions"]}
    assert conditions["Established"] == "True" and conditions.get("NonStructuralSchema") is None
    applied = kube.kubectl("apply", "--dry-run=server", "-f", str(CRDS_DIR))
    assert "Warning" not in applied.stderr, applied.stderr
