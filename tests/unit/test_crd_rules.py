"""Every CEL rule of the CRD, evaluated by cel-python through the admission pipeline, table-driven.

Each rule has at least one object it accepts and one it rejects; transition rules get (old, new)
update pairs. Create cases are also fed to the pydantic models, which must agree.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from publishing_operator.api import PublishingBuildSpec
from publishing_testkit.kube_emulator.admission import AdmissionError, CRDValidator

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "publishingbuild.yaml"
PROJECT_ID = "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90"

Spec = dict[str, Any]
Mutation = Callable[[Spec], None]


@functools.cache
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return loaded


@functools.cache
def validator() -> CRDValidator:
    return CRDValidator.from_crd(crd(), "v1alpha1")


def ios() -> Spec:
    return {
        "app": {"projectId": PROJECT_ID, "platform": "ios"},
        "source": {"github": {"ref": "refs/tags/v1.4.2"}},
        "expo": {"tokenSecretRef": {"name": "expo-robot"}},
    }


def android() -> Spec:
    spec = ios()
    spec["app"]["platform"] = "android"
    return spec


def archive() -> Spec:
    spec = android()
    spec["source"] = {"archive": {"url": "https://artifacts.example.com/m.tar.gz"}}
    spec["signing"] = {"secretRef": {"name": "mobile-android-signing"}}
    return spec


def ios_submit() -> Spec:
    spec = ios()
    spec["submit"] = {"ios": {"ascAppId": "1234567890", "apiKeySecretRef": {"name": "asc-api-key"}}}
    return spec


def android_submit() -> Spec:
    spec = android()
    spec["submit"] = {"android": {"serviceAccountKeySecretRef": {"name": "play-publisher"}}}
    return spec


def obj(spec: Spec) -> dict[str, Any]:
    return {
        "apiVersion": "publishing.dev/v1alpha1",
        "kind": "PublishingBuild",
        "metadata": {"name": "pb", "namespace": "default"},
        "spec": spec,
    }


def with_(base: Callable[[], Spec], *mutations: Mutation) -> Callable[[], Spec]:
    def build() -> Spec:
        spec = base()
        for mutate in mutations:
            mutate(spec)
        return spec

    return build


def put(path: str, value: Any) -> Mutation:
    """Set a dotted path in the spec, creating objects on the way."""

    def mutate(spec: Spec) -> None:
        *parents, last = path.split(".")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)

    return mutate


def drop(path: str) -> Mutation:
    def mutate(spec: Spec) -> None:
        *parents, last = path.split(".")
        node = spec
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


@dataclass(frozen=True)
class Case:
    id: str
    new: Callable[[], Spec]
    rejected_with: str | None = None  # the field and message of the expected error; None = accepted
    old: Callable[[], Spec] | None = None  # an update when set
    # A duration beyond Go's (about 292 years) makes duration() itself fail: kube-apiserver then
    # reports a conversion error for the rule, and so does the emulator. Still refused.
    conversion_error: bool = False


CREATE_CASES = [
    # exactly one source
    Case("source github only", ios),
    Case(
        "source archive only", with_(android, put("source", {"archive": {"url": "https://x.example/a.tgz"}}))
    ),
    Case(
        "source both",
        with_(ios, put("source.archive", {"url": "https://x.example/a.tgz"})),
        "spec.source: Invalid value: exactly one of source.github or source.archive must be set",
    ),
    Case(
        "source none",
        with_(ios, put("source", {})),
        "spec.source: Invalid value: exactly one of source.github or source.archive must be set",
    ),
    # signing only with an archive source
    Case("signing with archive", archive),
    Case(
        "signing with github",
        with_(ios, put("signing", {"secretRef": {"name": "mobile-ios-signing"}})),
        "spec.signing: Invalid value: signing is only allowed with an archive source",
    ),
    # submit.ios / submit.android match the platform
    Case("submit ios on ios", ios_submit),
    Case(
        "submit ios on android",
        with_(ios_submit, put("app.platform", "android")),
        "spec.submit.ios: Invalid value: submit.ios is only allowed when app.platform is ios",
    ),
    Case("submit android on android", android_submit),
    Case(
        "submit android on ios",
        with_(android_submit, put("app.platform", "ios")),
        "spec.submit.android: Invalid value: submit.android is only allowed when app.platform is",
    ),
    # exactly one of submit.ios / submit.android
    Case(
        "submit empty",
        with_(ios, put("submit", {})),
        "spec.submit: Invalid value: exactly one of submit.ios or submit.android must be set",
    ),
    Case(
        "submit both",
        with_(ios_submit, put("submit.android", {"serviceAccountKeySecretRef": {"name": "play-publisher"}})),
        "spec.submit: Invalid value: exactly one of submit.ios or submit.android must be set",
    ),
    # rollout only with releaseStatus inProgress
    Case(
        "rollout with inProgress",
        with_(
            android_submit,
            put("submit.android.releaseStatus", "inProgress"),
            put("submit.android.rollout", 0.1),
        ),
    ),
    Case(
        "rollout with completed",
        with_(android_submit, put("submit.android.rollout", 0.1)),
        "spec.submit.android.rollout: Invalid value: rollout is only allowed with releaseStatus",
    ),
    Case(
        "inProgress without rollout", with_(android_submit, put("submit.android.releaseStatus", "inProgress"))
    ),
    # Android buildVersion is an integer versionCode
    Case("android versionCode", with_(android, put("app.buildVersion", "42"))),
    Case("ios dotted buildNumber", with_(ios, put("app.buildVersion", "1.4.2"))),
    Case(
        "android dotted versionCode",
        with_(android, put("app.buildVersion", "1.4.2")),
        "spec.app.buildVersion: Invalid value: buildVersion must be an integer versionCode",
    ),
    # relative paths without '..'
    Case("baseDirectory nested", with_(ios, put("source.github.baseDirectory", "apps/mobile"))),
    Case(
        "baseDirectory escapes",
        with_(ios, put("source.github.baseDirectory", "apps/../../etc")),
        'spec.source.github.baseDirectory: Invalid value: "apps/../../etc": must be a relative path',
    ),
    Case("projectRootDirectory dot", with_(archive, put("source.archive.projectRootDirectory", "."))),
    Case(
        "projectRootDirectory parent",
        with_(archive, put("source.archive.projectRootDirectory", "..")),
        'spec.source.archive.projectRootDirectory: Invalid value: "..": must be a relative path',
    ),
    # durations: well formed, positive, initial <= max
    Case("durations compound", with_(ios, put("timeouts", {"build": "1h30m", "submit": "45m"}))),
    Case("backoff initial equals max", with_(ios, put("retry.backoff", {"initial": "5m", "max": "5m"}))),
    Case("backoff in milliseconds", with_(ios, put("retry.backoff", {"initial": "500ms", "max": "1s"}))),
    Case(
        "backoff initial above max",
        with_(ios, put("retry.backoff", {"initial": "1h", "max": "10m"})),
        "spec.retry.backoff: Invalid value: backoff.initial must not be longer than backoff.max",
    ),
    Case(
        "backoff initial above default max",
        with_(ios, put("retry.backoff", {"initial": "11m"})),
        "spec.retry.backoff: Invalid value: backoff.initial must not be longer than backoff.max",
    ),
    Case(
        "zero build timeout",
        with_(ios, put("timeouts.build", "0s")),
        'spec.timeouts.build: Invalid value: "0s": must be longer than zero',
    ),
    Case(
        "zero submit timeout",
        with_(ios, put("timeouts.submit", "0m")),
        'spec.timeouts.submit: Invalid value: "0m": must be longer than zero',
    ),
    Case(
        "zero backoff initial",
        with_(ios, put("retry.backoff.initial", "0ms")),
        'spec.retry.backoff.initial: Invalid value: "0ms": must be longer than zero',
    ),
    Case(
        "zero backoff max",
        with_(ios, put("retry.backoff", {"initial": "0s", "max": "0s"})),
        'spec.retry.backoff.max: Invalid value: "0s": must be longer than zero',
    ),
    Case(
        "malformed duration",
        with_(ios, put("timeouts.build", "2 hours")),
        'spec.timeouts.build: Invalid value: "2 hours": spec.timeouts.build in body should match',
    ),
    # ceilings: waits a user can defend, and no date computed from them can overflow
    Case("backoff max at its ceiling", with_(ios, put("retry.backoff", {"initial": "1s", "max": "24h"}))),
    Case(
        "backoff max above its ceiling",
        with_(ios, put("retry.backoff", {"initial": "1s", "max": "24h1ms"})),
        'spec.retry.backoff.max: Invalid value: "24h1ms": must be at most 24h',
    ),
    Case(
        "backoff max of ten thousand years (the overflow of issue 15)",
        with_(ios, put("retry.backoff.max", "87600000h")),
        "spec.retry.backoff.max: Invalid value",
        conversion_error=True,
    ),
    Case("build timeout at its ceiling", with_(ios, put("timeouts", {"build": "168h", "submit": "10080m"}))),
    Case(
        "build timeout above its ceiling",
        with_(ios, put("timeouts.build", "168h0.5s")),
        'spec.timeouts.build: Invalid value: "168h0.5s": must be at most 168h',
    ),
    Case(
        "submit timeout above its ceiling",
        with_(ios, put("timeouts.submit", "169h")),
        'spec.timeouts.submit: Invalid value: "169h": must be at most 168h',
    ),
    Case(
        "a timeout beyond Go's durations (the rule cannot even convert it)",
        with_(ios, put("timeouts.build", "2562048h")),
        "spec.timeouts.build: Invalid value",
        conversion_error=True,
    ),
    Case("half a microsecond is longer than zero", with_(ios, put("timeouts.submit", "0.0000005s"))),
    Case(
        "below a nanosecond is zero, as in Go",
        with_(ios, put("timeouts.submit", "0.0000000001ms")),
        'spec.timeouts.submit: Invalid value: "0.0000000001ms": must be longer than zero',
    ),
]

UPDATE_CASES = [
    Case("unchanged", ios_submit, old=ios_submit),
    Case("cancel false to true", with_(ios, put("cancel", True)), old=ios),
    Case("cancel stays true", with_(ios, put("cancel", True)), old=with_(ios, put("cancel", True))),
    # Back to false: a GitOps tool reverting a kubectl cancel is not refused for ever, and false
    # then true again is a new cancel request (for a run retried after a cancel).
    Case("cancel true to false", with_(ios, put("cancel", False)), old=with_(ios, put("cancel", True))),
    Case("cancel true to absent (defaults to false)", ios, old=with_(ios, put("cancel", True))),
    Case(
        "app profile",
        with_(ios, put("app.profile", "preview")),
        "spec.app: Invalid value: spec.app is immutable",
        old=ios,
    ),
    Case(
        "app buildVersion added", with_(ios, put("app.buildVersion", "7")), "spec.app is immutable", old=ios
    ),
    Case("source ref", with_(ios, put("source.github.ref", "main")), "spec.source is immutable", old=ios),
    Case("expo key", with_(ios, put("expo.tokenSecretRef.key", "other")), "spec.expo is immutable", old=ios),
    Case(
        "signing secret",
        with_(archive, put("signing.secretRef.name", "other")),
        "spec.signing: Invalid value: spec.signing is immutable",
        old=archive,
    ),
    Case(
        "submit track",
        with_(android_submit, put("submit.android.track", "beta")),
        "spec.submit is immutable",
        old=android_submit,
    ),
    Case("retry attempts", with_(ios, put("retry.maxAttempts", 5)), "spec.retry is immutable", old=ios),
    Case("retry backoff", with_(ios, put("retry.backoff.factor", 3)), "spec.retry is immutable", old=ios),
    Case("timeouts build", with_(ios, put("timeouts.build", "3h")), "spec.timeouts is immutable", old=ios),
    Case(
        "ttl changed",
        with_(ios, put("ttlSecondsAfterFinished", 60)),
        "spec.ttlSecondsAfterFinished: Invalid value: 60: spec.ttlSecondsAfterFinished is immutable",
        old=with_(ios, put("ttlSecondsAfterFinished", 30)),
    ),
    Case(
        "explicit default is no change",
        with_(ios, put("retry", {"maxAttempts": 3}), put("app.profile", "production")),
        old=ios,
    ),
    # presence of optional parts (the per-field rules do not run when one side lacks the field)
    Case(
        "signing added",
        archive,
        "spec.signing: Invalid value: spec.signing is immutable; it cannot be added or removed",
        old=with_(archive, drop("signing")),
    ),
    Case(
        "signing removed",
        with_(archive, drop("signing")),
        "spec.signing is immutable; it cannot be added",
        old=archive,
    ),
    Case(
        "submit added",
        ios_submit,
        "spec.submit: Invalid value: spec.submit is immutable; it cannot",
        old=ios,
    ),
    Case("submit removed", ios, "spec.submit is immutable; it cannot be added or removed", old=ios_submit),
    Case(
        "ttl added",
        with_(ios, put("ttlSecondsAfterFinished", 60)),
        "spec.ttlSecondsAfterFinished: Invalid value: spec.ttlSecondsAfterFinished is immutable;",
        old=ios,
    ),
    Case(
        "ttl removed",
        ios,
        "spec.ttlSecondsAfterFinished is immutable; it cannot be added or removed",
        old=with_(ios, put("ttlSecondsAfterFinished", 60)),
    ),
    Case(
        "cancel together with a spec change",
        with_(ios, put("cancel", True), put("app.profile", "preview")),
        "spec.app is immutable",
        old=ios,
    ),
]


def admit(case: Case) -> AdmissionError | None:
    old = obj(case.old()) if case.old else None
    try:
        validator().admit(obj(case.new()), old)
    except AdmissionError as exc:
        return exc
    return None


@pytest.mark.parametrize("case", CREATE_CASES + UPDATE_CASES, ids=lambda c: c.id)
def test_cel_rule(case: Case) -> None:
    error = admit(case)
    if case.rejected_with is None:
        assert error is None, f"rejected: {error}"
    else:
        assert error is not None, "accepted"
        assert case.rejected_with in str(error)
        assert ("evaluating rule" in str(error)) == case.conversion_error


@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda c: c.id)
def test_pydantic_models_agree_on_create(case: Case) -> None:
    """The operator's in-process validation accepts and rejects exactly what the API server does."""
    try:
        PublishingBuildSpec.model_validate(case.new())
    except ValidationError:
        assert case.rejected_with is not None, "pydantic rejects what the CRD accepts"
    else:
        assert case.rejected_with is None, "pydantic accepts what the CRD rejects"


def _rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(schema.get("x-kubernetes-validations", []))
    for sub in (schema.get("properties") or {}).values():
        found += _rules(sub)
    if isinstance(schema.get("items"), dict):
        found += _rules(schema["items"])
    return found


def test_every_rule_is_exercised_both_ways() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = _rules(schema)
    assert len(rules) == 28
    messages = {rule["message"] for rule in rules}
    hit = set()
    for case in CREATE_CASES + UPDATE_CASES:
        error = admit(case)
        if error is not None:
            hit |= {m for m in messages if any(e.message.endswith(f": {m}") for e in error.errors)}
    assert messages - hit == set(), "rules no case rejects"
    # each rule needs an accepting case too: the rule holds for every accepted object
    assert any(admit(c) is None for c in UPDATE_CASES)
    assert sum(admit(c) is None for c in CREATE_CASES) >= 10


def test_a_resource_may_be_created_cancelled() -> None:
    assert admit(Case("create cancelled", with_(ios, put("cancel", True)))) is None


def test_status_updates_validate_the_whole_object_but_keep_the_spec_rules_quiet() -> None:
    old = validator().admit(obj(ios_submit()), None)
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Building", "attempt": 1}
    admitted = validator().admit(new, old, subresource="status")
    assert admitted["status"] == {"phase": "Building", "attempt": 1}
