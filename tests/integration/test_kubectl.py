"""The real kubectl against the emulated API: what a user does with the CRD and the examples."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from publishing_testkit.kube_emulator import load_manifests
from tests.fixtures.kube import CRDS_DIR, EXAMPLES_DIR, Kube, OutputLines

pytestmark = pytest.mark.integration

Obj = dict[str, Any]


def _example(name: str) -> Obj:
    for manifest in load_manifests(EXAMPLES_DIR):
        if manifest["kind"] == "PublishingBuild" and manifest["metadata"]["name"] == name:
            return manifest
    raise LookupError(name)


ANDROID = "mobile-android-1.4.2"
IOS = "mobile-ios-1.4.2"
ARCHIVE = "mobile-android-archive-1.4.3-rc1"


def test_apply_crd_and_examples_then_get_shows_printer_columns(kube: Kube) -> None:
    kube.apply_files(CRDS_DIR)
    applied = kube.apply_files(EXAMPLES_DIR)
    assert "publishingbuild.publishing.dev/mobile-android-1.4.2 created" in applied.stdout

    table = kube.kubectl("get", "pb").stdout.splitlines()
    assert table[0].split() == ["NAME", "PLATFORM", "PHASE", "SUCCEEDED", "REASON", "ATTEMPT", "AGE"]
    names = sorted(line.split()[0] for line in table[1:])
    assert names == sorted(
        m["metadata"]["name"] for m in load_manifests(EXAMPLES_DIR) if m["kind"] == "PublishingBuild"
    )

    wide = kube.kubectl("get", "publishingbuilds", "-o", "wide").stdout.splitlines()
    assert "BUILD" in wide[0].split()  # priority-1 column only in -o wide

    explained = kube.kubectl("explain", "pb.spec.app").stdout  # the CRD's schema, served as OpenAPI v3
    assert "KIND:       PublishingBuild" in explained and "platform" in explained


def test_get_yaml_shows_stamped_metadata_and_defaults(kube: Kube) -> None:
    kube.apply_files(CRDS_DIR)  # first, as on a real cluster: kubectl maps kinds before applying
    kube.apply_files(EXAMPLES_DIR / "secrets.yaml", EXAMPLES_DIR / "archive-build.yaml")
    obj = yaml.safe_load(kube.kubectl("get", "pb", ARCHIVE, "-o", "yaml").stdout)
    meta = obj["metadata"]
    assert obj["apiVersion"] == "publishing.dev/v1alpha1"
    assert obj["kind"] == "PublishingBuild"
    assert meta["namespace"] == kube.namespace
    assert meta["generation"] == 1
    assert meta["uid"] and meta["resourceVersion"].isdigit() and meta["creationTimestamp"].endswith("Z")
    assert obj["spec"]["expo"]["tokenSecretRef"]["key"] == "token"  # schema default applied
    assert "status" not in obj  # the main resource never writes status

    listed = yaml.safe_load(kube.kubectl("get", "secrets", "-o", "yaml").stdout)
    assert {item["metadata"]["name"] for item in listed["items"]} >= {"expo-robot"}


def _set(path: str, value: Any) -> Callable[[Obj], None]:
    def mutate(obj: Obj) -> None:
        *parents, last = path.split(".")
        target = obj
        for part in parents:
            target = target.setdefault(part, {})
        if value is _DELETE:
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(value)

    return mutate


_DELETE = object()
_ANDROID_SUBMIT = _example(ANDROID)["spec"]["submit"]["android"]
_IOS_SUBMIT = _example(IOS)["spec"]["submit"]["ios"]

# One violating object per CEL rule of the CRD, keyed by (schema path, message). Creates:
CREATE_VIOLATIONS: dict[tuple[str, str], tuple[str, list[Callable[[Obj], None]]]] = {
    (".spec", "signing is only allowed with an archive source (source.archive)"): (
        ANDROID, [_set("spec.signing", {"secretRef": {"name": "mobile-android-signing"}})],
    ),
    (".spec", "submit.ios is only allowed when app.platform is ios"): (
        ANDROID, [_set("spec.submit", {"ios": _IOS_SUBMIT})],
    ),
    (".spec", "submit.android is only allowed when app.platform is android"): (
        IOS, [_set("spec.submit", {"android": _ANDROID_SUBMIT})],
    ),
    (".spec.app", "buildVersion must be an integer versionCode when platform is android"): (
        ANDROID, [_set("spec.app.buildVersion", "1.4.2")],
    ),
    (".spec.source", "exactly one of source.github or source.archive must be set"): (
        ANDROID, [_set("spec.source.archive", {"url": "https://example.com/app.tar.gz"})],
    ),
    (".spec.source.github.baseDirectory", "must be a relative path without '..' segments"): (
        ANDROID, [_set("spec.source.github.baseDirectory", "apps/../secrets")],
    ),
    (".spec.source.archive.projectRootDirectory", "must be a relative path without '..' segments"): (
        ARCHIVE, [_set("spec.source.archive.projectRootDirectory", "../outside")],
    ),
    (".spec.submit", "exactly one of submit.ios or submit.android must be set"): (
        ANDROID, [_set("spec.submit.ios", _IOS_SUBMIT)],
    ),
    (".spec.submit.android", "rollout is only allowed with releaseStatus inProgress"): (
        ANDROID,
        [_set("spec.submit.android.rollout", 0.5), _set("spec.submit.android.releaseStatus", "completed")],
    ),
    (".spec.retry.backoff", "backoff.initial must not be longer than backoff.max"): (
        IOS, [_set("spec.retry.backoff", {"initial": "20m", "factor": 2, "max": "10m"})],
    ),
    (".spec.retry.backoff.initial", "must be longer than zero"): (
        IOS, [_set("spec.retry.backoff", {"initial": "0s", "factor": 2, "max": "10m"})],
    ),
    (".spec.retry.backoff.max", "must be longer than zero"): (
        IOS, [_set("spec.retry.backoff", {"initial": "0s", "factor": 2, "max": "0s"})],
    ),
    (".spec.retry.backoff.max", "must be at most 24h"): (
        IOS, [_set("spec.retry.backoff", {"initial": "1s", "factor": 2, "max": "25h"})],
    ),
    (".spec.timeouts.build", "must be longer than zero"): (IOS, [_set("spec.timeouts.build", "0s")]),
    (".spec.timeouts.build", "must be at most 168h"): (IOS, [_set("spec.timeouts.build", "169h")]),
    (".spec.timeouts.submit", "must be longer than zero"): (IOS, [_set("spec.timeouts.submit", "0m")]),
    (".spec.timeouts.submit", "must be at most 168h"): (IOS, [_set("spec.timeouts.submit", "10081m")]),
}  # fmt: skip

# Updates of an existing object (transition rules: immutability):
UPDATE_VIOLATIONS: dict[tuple[str, str], tuple[str, list[Callable[[Obj], None]]]] = {
    (".spec", "spec.signing is immutable; it cannot be added or removed after creation"): (
        ARCHIVE, [_set("spec.signing", _DELETE)],
    ),
    (".spec", "spec.submit is immutable; it cannot be added or removed after creation"): (
        ANDROID, [_set("spec.submit", _DELETE)],
    ),
    (".spec", "spec.ttlSecondsAfterFinished is immutable; it cannot be added or removed after creation"): (
        ANDROID, [_set("spec.ttlSecondsAfterFinished", 60)],
    ),
    (".spec.app", "spec.app is immutable"): (ANDROID, [_set("spec.app.profile", "preview")]),
    (".spec.source", "spec.source is immutable"): (ANDROID, [_set("spec.source.github.ref", "refs/tags/v2")]),
    (".spec.expo", "spec.expo is immutable"): (ANDROID, [_set("spec.expo.tokenSecretRef.name", "other")]),
    (".spec.signing", "spec.signing is immutable"): (
        ARCHIVE, [_set("spec.signing.secretRef.name", "other-signing")],
    ),
    (".spec.submit", "spec.submit is immutable"): (ANDROID, [_set("spec.submit.android.track", "beta")]),
    (".spec.retry", "spec.retry is immutable"): (IOS, [_set("spec.retry.maxAttempts", 9)]),
    (".spec.timeouts", "spec.timeouts is immutable"): (IOS, [_set("spec.timeouts.build", "3h")]),
    (".spec.ttlSecondsAfterFinished", "spec.ttlSecondsAfterFinished is immutable"): (
        IOS, [_set("spec.ttlSecondsAfterFinished", 60)],
    ),
}  # fmt: skip


def _crd_rules() -> set[tuple[str, str]]:
    crd = yaml.safe_load((CRDS_DIR / "publishingbuild.yaml").read_text())
    rules: set[tuple[str, str]] = set()

    def walk(schema: Obj, path: str) -> None:
        for rule in schema.get("x-kubernetes-validations", []):
            rules.add((path, rule.get("message") or rule.get("messageExpression")))
        for key, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{path}.{key}")
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{path}[*]")

    walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    return rules


def test_every_cel_rule_of_the_crd_has_a_violation_case() -> None:
    covered = set(CREATE_VIOLATIONS) | set(UPDATE_VIOLATIONS)
    assert _crd_rules() - covered == set(), "add a violating case for these CRD rules"


def _kubectl_apply(kube: Kube, obj: Obj) -> tuple[int, str]:
    result = kube.kubectl("apply", "-f", "-", input=json.dumps(obj), check=False)
    return result.returncode, result.stderr


def test_kubectl_apply_breaking_a_cel_rule_is_refused_with_its_message(kube: Kube) -> None:
    kube.apply_crds()
    failures: list[str] = []
    for (path, message), (base, mutations) in CREATE_VIOLATIONS.items():
        obj = _example(base)
        obj["metadata"]["name"] = "violation"
        for mutate in mutations:
            mutate(obj)
        code, stderr = _kubectl_apply(kube, obj)
        if code == 0 or message not in stderr or "is invalid" not in stderr:
            failures.append(f"{path} {message!r}: exit {code}: {stderr.strip()}")
    assert not failures, "\n".join(failures)
    assert kube.kubectl("get", "pb", "-o", "name").stdout == ""  # nothing was stored


def test_kubectl_apply_changing_the_immutable_spec_is_refused(kube: Kube) -> None:
    kube.apply_crds()
    failures: list[str] = []
    for index, ((path, message), (base, mutations)) in enumerate(UPDATE_VIOLATIONS.items()):
        obj = _example(base)
        obj["metadata"]["name"] = f"update-{index}"
        created = kube.apply([obj])[0]
        for mutate in mutations:
            mutate(obj)
        code, stderr = _kubectl_apply(kube, obj)
        if code == 0 or message not in stderr:
            failures.append(f"{path} {message!r}: exit {code}: {stderr.strip()}")
        after = asyncio.run(kube.get("pb", obj["metadata"]["name"]))
        assert after is not None and after["spec"] == created["spec"]
    assert not failures, "\n".join(failures)


def test_cancel_may_change_from_false_to_true_and_back(kube: Kube) -> None:
    kube.apply_crds()
    kube.apply([_example(ANDROID)])
    kube.kubectl("patch", "pb", ANDROID, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    obj = yaml.safe_load(kube.kubectl("get", "pb", ANDROID, "-o", "yaml").stdout)
    assert obj["spec"]["cancel"] is True
    assert obj["metadata"]["generation"] == 2  # a spec change moves the generation
    kube.kubectl("patch", "pb", ANDROID, "--type=merge", "-p", '{"spec":{"cancel":false}}')
    obj = yaml.safe_load(kube.kubectl("get", "pb", ANDROID, "-o", "yaml").stdout)
    assert (obj["spec"]["cancel"], obj["metadata"]["generation"]) == (False, 3)


def test_unknown_fields_are_refused_by_kubectl_and_pruned_from_status(kube: Kube) -> None:
    kube.apply_crds()
    obj = _example(ANDROID)
    obj["spec"]["colour"] = "blue"
    code, stderr = _kubectl_apply(kube, obj)
    assert code != 0 and 'unknown field "spec.colour"' in stderr  # kubectl asks for strict validation

    warned = kube.kubectl("apply", "--validate=warn", "-f", "-", input=json.dumps(obj))
    assert 'Warning: unknown field "spec.colour"' in warned.stderr
    stored = yaml.safe_load(kube.kubectl("get", "pb", ANDROID, "-o", "yaml").stdout)
    assert "colour" not in stored["spec"]  # pruned
    status_patch = json.dumps({"status": {"phase": "Pending", "favouriteColour": "blue"}})
    kube.kubectl("patch", "pb", ANDROID, "--subresource=status", "--type=merge", "-p", status_patch)
    stored = yaml.safe_load(kube.kubectl("get", "pb", ANDROID, "-o", "yaml").stdout)
    assert stored["status"]["phase"] == "Pending"
    assert "favouriteColour" not in stored["status"]


def test_kubectl_wait_for_condition_succeeded(kube: Kube) -> None:
    kube.apply_crds()
    kube.apply([_example(ANDROID)])
    process = kube.kubectl_background("wait", "--for=condition=Succeeded", f"pb/{ANDROID}", "--timeout=30s")
    try:
        status = {
            "status": {
                "phase": "Succeeded",
                "conditions": [{"type": "Succeeded", "status": "True", "reason": "Submitted",
                                "message": "done", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            }
        }  # fmt: skip
        kube.kubectl("patch", "pb", ANDROID, "--subresource=status", "--type=merge", "-p", json.dumps(status))
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "condition met" in out
    row = kube.kubectl("get", "pb", ANDROID, "--no-headers").stdout.split()
    assert row[1:5] == ["android", "Succeeded", "True", "Submitted"]


def test_kubectl_delete_waits_for_finalizers_as_on_a_real_cluster(kube: Kube) -> None:
    kube.apply_crds()
    obj = _example(ANDROID)
    obj["metadata"]["finalizers"] = ["publishing.dev/test"]
    kube.apply([obj])

    kube.kubectl("delete", "pb", ANDROID, "--wait=false")
    held = yaml.safe_load(kube.kubectl("get", "pb", ANDROID, "-o", "yaml").stdout)
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["generation"] == 2

    refused = kube.kubectl(
        "patch", "pb", ANDROID, "--type=json", "-p",
        '[{"op":"add","path":"/metadata/finalizers/-","value":"publishing.dev/another"}]', check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "no new finalizers can be added" in refused.stderr

    kube.kubectl("patch", "pb", ANDROID, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    gone = kube.kubectl("get", "pb", ANDROID, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr

    kube.apply([_example(IOS)])
    deleted = kube.kubectl("delete", "pb", IOS, "--timeout=20s")  # waits for the object to go
    assert f'publishingbuild.publishing.dev "{IOS}" deleted' in deleted.stdout


def test_imperative_create_of_namespaces_secrets_and_configmaps(kube: Kube) -> None:
    # kubectl sends these as protobuf; the emulator decodes the few core kinds it needs.
    team = kube.other_namespace("team-a")
    kube.kubectl("create", "namespace", team)
    assert team in kube.kubectl("get", "ns").stdout
    kube.kubectl("create", "secret", "generic", "robot", "-n", team, "--from-literal=token=s3cr3t")
    secret = yaml.safe_load(kube.kubectl("get", "secret", "robot", "-n", team, "-o", "yaml").stdout)
    assert secret["data"] == {"token": "czNjcjN0"} and secret["type"] == "Opaque"
    kube.kubectl("create", "configmap", "settings", "-n", team, "--from-literal=mode=fast")
    assert kube.kubectl("get", "cm", "settings", "-n", team, "-o", "jsonpath={.data.mode}").stdout == "fast"
    again = kube.kubectl("create", "namespace", team, check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr
    if kube.real:
        return  # what follows is the namespace controller's work, which does not run beside envtest

    # Deleting the namespace takes its content with it, and kubectl waits for that.
    kube.kubectl("delete", "ns", team, "--timeout=20s")
    assert team not in kube.kubectl("get", "ns").stdout
    assert kube.kubectl("get", "secrets", "-A", "-o", "name").stdout == ""


def test_kubectl_get_watch_prints_rows_as_objects_change(kube: Kube) -> None:
    kube.apply_crds()
    kube.apply([_example(ANDROID)])
    process = kube.kubectl_background("get", "pb", "--watch", "--output-watch-events")
    lines = OutputLines(process)
    try:
        header = lines.wait_for(lambda line: line.startswith("EVENT"), timeout=30).split()
        assert header[:4] == ["EVENT", "NAME", "PLATFORM", "PHASE"]
        lines.wait_for(lambda line: line.split()[:2] == ["ADDED", ANDROID], timeout=30)
        status = {"status": {"phase": "Building"}}
        kube.kubectl("patch", "pb", ANDROID, "--subresource=status", "--type=merge", "-p", json.dumps(status))
        lines.wait_for(
            lambda line: line.split()[:4] == ["MODIFIED", ANDROID, "android", "Building"], timeout=30
        )
        kube.kubectl("delete", "pb", ANDROID)
        lines.wait_for(lambda line: line.split()[:2] == ["DELETED", ANDROID], timeout=30)
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_serviceaccount_is_held_to_the_applied_rbac(kube: Kube) -> None:
    kube.apply_crds()
    rbac = "rbac.authorization.k8s.io/v1"
    rules = [
        {
            "apiGroups": ["publishing.dev"],
            "resources": ["publishingbuilds"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["publishing.dev"],
            "resources": ["publishingbuilds/status"],
            "verbs": ["get", "patch"],
        },
    ]
    binding = {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "publisher"},
        "subjects": [{"kind": "ServiceAccount", "name": "publisher", "namespace": kube.namespace}],
    }
    kube.apply([
        _example(ANDROID),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "publisher"}},
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": "publisher"}, "rules": rules},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": "publisher"}, **binding},
    ])  # fmt: skip
    sa = f"system:serviceaccount:{kube.namespace}:publisher"

    def kubectl_as_sa(*args: str) -> subprocess.CompletedProcess[str]:
        return kube.kubectl(f"--as={sa}", *args, check=False)  # impersonation, as kubectl does it

    assert ANDROID in kubectl_as_sa("get", "pb").stdout
    status = json.dumps({"status": {"phase": "Pending"}})
    assert (
        kubectl_as_sa("patch", "pb", ANDROID, "--subresource=status", "--type=merge", "-p", status).returncode
        == 0
    )
    refused = kubectl_as_sa("delete", "pb", ANDROID)
    assert refused.returncode != 0
    expected = f'User "{sa}" cannot delete resource "publishingbuilds" in API group "publishing.dev"'
    assert f'{expected} in the namespace "{kube.namespace}"' in refused.stderr
    assert "Forbidden" in kubectl_as_sa("get", "secrets").stderr

    # A token issued for the ServiceAccount (what kopf or the Python client would send) is held to it too.
    token = kube.serviceaccount_token("default", "publisher")
    headers = {"Authorization": f"Bearer {token}"}
    path = kube.path("publishingbuilds")
    assert asyncio.run(kube.request("GET", path, headers=headers))[0] == 200
    code, body = asyncio.run(kube.request("DELETE", f"{path}/{ANDROID}", headers=headers))
    assert (code, body["reason"]) == (403, "Forbidden")


def test_over_https_kubectl_verifies_the_ca_and_serviceaccount_tokens_meet_rbac(
    kube_tls: Kube, tmp_path: Path
) -> None:
    kube = kube_tls
    assert kube.url.startswith("https://")
    kube.apply_crds()
    kube.apply([_example(ANDROID)])
    assert ANDROID in kube.kubectl("get", "pb").stdout  # verified against the kubeconfig's CA

    as_nobody = kube.serviceaccount_kubeconfig(tmp_path / "sa-kubeconfig", "default", "nobody")
    refused = kube.kubectl("get", "pb", check=False, kubeconfig=as_nobody)  # its bearer token is sent
    assert refused.returncode != 0
    assert (
        f'User "system:serviceaccount:{kube.namespace}:nobody" cannot list resource "publishingbuilds"'
        in refused.stderr
    )
