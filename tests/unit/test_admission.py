"""The emulator's admission pipeline: pruning, defaulting, schema errors, CEL, and the Status body."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from publishing_testkit.kube_emulator.admission import AdmissionError, CRDValidator, FieldError

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "publishingbuild.yaml"
PROJECT_ID = "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90"


@functools.cache
def validator() -> CRDValidator:
    return CRDValidator.from_crd(yaml.safe_load(CRD_PATH.read_text()), "v1alpha1")


def pb(spec: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    base = {
        "app": {"projectId": PROJECT_ID, "platform": "android"},
        "source": {"github": {"ref": "main"}},
        "expo": {"tokenSecretRef": {"name": "expo-robot"}},
    }
    return {
        "apiVersion": "publishing.dev/v1alpha1",
        "kind": "PublishingBuild",
        "metadata": {"name": "x", "namespace": "default", "labels": {"a": "b"}, "unknownMeta": 1},
        "spec": spec if spec is not None else base,
        **top,
    }


def rejection(obj: dict[str, Any], old: dict[str, Any] | None = None) -> AdmissionError:
    with pytest.raises(AdmissionError) as info:
        validator().admit(obj, old)
    return info.value


# -- defaulting --------------------------------------------------------------------------------------


def test_defaults_fill_a_minimal_spec_like_the_api_server() -> None:
    admitted = validator().admit(pb(), None)
    assert admitted["spec"] == {
        "app": {"projectId": PROJECT_ID, "platform": "android", "profile": "production"},
        "source": {"github": {"ref": "main"}},
        "expo": {"tokenSecretRef": {"name": "expo-robot", "key": "token"}},
        "retry": {"maxAttempts": 3, "backoff": {"initial": "2s", "factor": 2, "max": "10m"}},
        "timeouts": {"build": "2h", "submit": "1h"},
        "cancel": False,
    }


def test_defaults_apply_only_under_existing_parents_and_keep_given_values() -> None:
    spec = pb()["spec"]
    spec["retry"] = {"backoff": {"initial": "1s"}}
    spec["submit"] = {"android": {"serviceAccountKeySecretRef": {"name": "play"}, "track": "beta"}}
    admitted = validator().admit(pb(spec), None)["spec"]
    assert admitted["retry"] == {"maxAttempts": 3, "backoff": {"initial": "1s", "factor": 2, "max": "10m"}}
    assert admitted["submit"]["android"] == {
        "track": "beta",
        "releaseStatus": "completed",
        "changesNotSentForReview": False,
        "serviceAccountKeySecretRef": {"name": "play", "key": "service-account.json"},
    }
    assert "archive" not in admitted["source"]
    assert "signing" not in admitted


def test_null_for_a_defaulted_field_gets_the_default() -> None:
    spec = pb()["spec"]
    spec["cancel"] = None
    spec["app"]["profile"] = None
    admitted = validator().admit(pb(spec), None)["spec"]
    assert admitted["cancel"] is False
    assert admitted["app"]["profile"] == "production"


def test_input_is_not_mutated() -> None:
    obj = pb(junk=1)
    before = copy.deepcopy(obj)
    validator().admit(obj, None)
    assert obj == before


# -- pruning -----------------------------------------------------------------------------------------


def test_unknown_fields_are_pruned_everywhere_but_metadata() -> None:
    obj = pb(junk={"x": 1})
    obj["spec"]["colour"] = "blue"
    obj["spec"]["app"]["nickname"] = "m"
    obj["status"] = {
        "phase": "Building",
        "lastPolledTime": "2026-11-27T18:00:00Z",
        "build": {"id": "b", "x": 1},
    }
    admitted = validator().admit(obj, None)
    assert set(admitted) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert "colour" not in admitted["spec"]
    assert "nickname" not in admitted["spec"]["app"]
    assert admitted["status"] == {"phase": "Building", "build": {"id": "b"}}
    assert admitted["metadata"] == obj["metadata"]  # ObjectMeta is the emulator's business


def test_preserve_unknown_fields_and_maps_are_honoured() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "mixed": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }
        },
    }
    spec = {
        "free": {"anything": {"deep": [1, {"x": None}]}},
        "mixed": {"extra": 1, "known": {"a": "y", "b": "pruned"}},
        "labels": {"k": "v"},
        "gone": True,
    }
    admitted = CRDValidator(schema).admit(
        {"apiVersion": "v", "kind": "K", "metadata": {}, "spec": spec}, None
    )
    assert admitted["spec"] == {
        "free": {"anything": {"deep": [1, {"x": None}]}},
        "mixed": {"extra": 1, "known": {"a": "y"}},
        "labels": {"k": "v"},
    }


# -- schema errors -----------------------------------------------------------------------------------


def test_schema_errors_read_like_a_real_api_server() -> None:
    obj = pb()
    obj["spec"]["app"]["platform"] = "web"
    obj["spec"]["app"]["projectId"] = "nope"
    obj["spec"]["app"]["profile"] = "p" * 65
    obj["spec"]["retry"] = {"maxAttempts": 11}
    del obj["spec"]["expo"]
    errors = {e.field: e for e in rejection(obj).errors}
    assert str(errors["spec.app.platform"]) == (
        'spec.app.platform: Unsupported value: "web": supported values: "ios", "android"'
    )
    assert errors["spec.app.platform"].type == "FieldValueNotSupported"
    assert errors["spec.app.projectId"].message.startswith(
        'Invalid value: "nope": spec.app.projectId in body should match \'^[0-9a-f]{8}-'
    )
    assert errors["spec.app.profile"].message == "Too long: may not be more than 64 bytes"
    assert errors["spec.retry.maxAttempts"].message == (
        "Invalid value: 11: spec.retry.maxAttempts in body should be less than or equal to 10"
    )
    assert errors["spec.expo"] == FieldError(
        type="FieldValueRequired", field="spec.expo", message="Required value"
    )
    # blocking errors (enum, required, too long) mean the CEL rules were skipped, and the server says so
    assert errors["<nil>"].message.startswith("Invalid value: null: some validation rules were not checked")


def test_type_errors_show_the_type_and_block_cel() -> None:
    obj = pb()
    obj["spec"]["retry"] = {"maxAttempts": "3"}
    obj["spec"]["source"] = {}  # would fail a CEL rule, which must not run
    error = rejection(obj)
    assert [str(e) for e in error.errors] == [
        'spec.retry.maxAttempts: Invalid value: "string": spec.retry.maxAttempts in body must be of type '
        'integer: "string"',
        "<nil>: Invalid value: null: some validation rules were not checked because the object was "
        "invalid; correct the existing errors to complete validation",
    ]


def test_pattern_errors_do_not_block_cel() -> None:
    obj = pb()
    obj["spec"]["source"] = {"github": {"ref": "has space"}, "archive": {"url": "https://x.example/a.tgz"}}
    fields = [e.field for e in rejection(obj).errors]
    assert fields == ["spec.source.github.ref", "spec.source"]


def test_status_schema_lists_formats_and_limits() -> None:
    cond = {"type": "Succeeded", "status": "Unknown", "reason": "BuildQueued", "message": ""}
    obj = pb(
        status={
            "phase": "Sleeping",
            "startTime": "yesterday",
            "conditions": [
                {**cond, "lastTransitionTime": "2026-11-27T18:00:00Z"},
                {**cond, "lastTransitionTime": "2026-11-27T18:00:01Z"},
                {"type": "CredentialsReady", "status": "True", "reason": "Validated", "message": ""},
            ],
            "history": [
                {
                    "attempt": 1,
                    "result": "Failed",
                    "reason": "BuildFailed",
                    "finishedAt": "2026-11-27T18:00:00Z",
                }
            ]
            * 11,
        }
    )
    errors = {e.field: e for e in rejection(obj).errors}
    assert errors["status.phase"].type == "FieldValueNotSupported"
    assert errors["status.startTime"].message == (
        'Invalid value: "yesterday": status.startTime in body must be of type date-time: "yesterday"'
    )
    assert errors["status.conditions[1]"].type == "FieldValueDuplicate"
    assert errors["status.conditions[2].lastTransitionTime"].type == "FieldValueRequired"
    assert errors["status.history"].message == "Too many: 11: must have at most 10 items"


def test_a_valid_status_is_kept() -> None:
    status = {
        "observedGeneration": 1,
        "phase": "Succeeded",
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "Succeeded",
                "message": "done",
                "lastTransitionTime": "2026-11-27T18:00:00Z",
                "observedGeneration": 1,
            }
        ],
        "attempt": 2,
        "startTime": "2026-11-27T17:00:00Z",
        "completionTime": "2026-11-27T18:00:00Z",
        "build": {"id": "b", "status": "FINISHED", "queuePosition": 0, "completedAt": "2026-11-27T17:59:00Z"},
        "submission": {"id": "s", "status": "FINISHED"},
        "history": [
            {"attempt": 1, "result": "Failed", "reason": "Timeout", "finishedAt": "2026-11-27T17:30:00Z"}
        ],
        "message": "built and submitted",
        "retryRequest": "1",
    }
    assert validator().admit(pb(status=status), None)["status"] == status


# -- the Status body ---------------------------------------------------------------------------------


def test_status_body_for_one_cel_error() -> None:
    obj = pb()
    obj["spec"]["source"]["archive"] = {"url": "https://x.example/a.tgz"}
    body = rejection(obj).to_status("PublishingBuild", "x", "publishing.dev")
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'PublishingBuild.publishing.dev "x" is invalid: spec.source: Invalid value: '
        "exactly one of source.github or source.archive must be set",
        "reason": "Invalid",
        "details": {
            "name": "x",
            "group": "publishing.dev",
            "kind": "PublishingBuild",
            "causes": [
                {
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: exactly one of source.github or source.archive must be set",
                    "field": "spec.source",
                }
            ],
        },
        "code": 422,
    }


def test_status_message_lists_several_errors_in_brackets() -> None:
    obj = pb()
    obj["spec"]["source"] = {}
    obj["spec"]["signing"] = {"secretRef": {"name": "s"}}
    message = rejection(obj).to_status("PublishingBuild", "x", "publishing.dev")["message"]
    # a node's own rules run before its children's, as in kube-apiserver
    assert message.startswith('PublishingBuild.publishing.dev "x" is invalid: [spec.signing: Invalid value:')
    assert message.endswith("exactly one of source.github or source.archive must be set]")


# -- CEL features beyond the PublishingBuild rules -----------------------------------------------------


def synthetic(rules: list[dict[str, Any]], prop: dict[str, Any] | None = None) -> CRDValidator:
    crd = {
        "metadata": {"name": "things.example.com"},
        "spec": {
            "versions": [
                {
                    "name": "v1",
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-validations": rules,
                                    "properties": prop
                                    or {
                                        "name": {"type": "string", "maxLength": 64},
                                        "count": {"type": "integer"},
                                        "ratio": {"type": "number"},
                                        "when": {"type": "string", "format": "date-time"},
                                        "items": {
                                            "type": "array",
                                            "maxItems": 5,
                                            "x-kubernetes-list-type": "map",
                                            "x-kubernetes-list-map-keys": ["k"],
                                            "items": {
                                                "type": "object",
                                                "properties": {
                                                    "k": {"type": "string"},
                                                    "v": {
                                                        "type": "string",
                                                        "x-kubernetes-validations": [
                                                            {
                                                                "rule": "self == oldSelf",
                                                                "message": "v is immutable",
                                                            }
                                                        ],
                                                    },
                                                },
                                            },
                                        },
                                    },
                                }
                            },
                        }
                    },
                }
            ]
        },
    }
    return CRDValidator.from_crd(crd, "v1")


def thing(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec}


def test_kubernetes_string_library_and_types() -> None:
    rules = [
        {"rule": "self.name.split('-').size() == 2", "message": "two parts"},
        {
            "rule": "self.name.lowerAscii() == self.name",
            "message": "lowercase",
            "reason": "FieldValueForbidden",
        },
        {"rule": "self.ratio < 1.0", "message": "ratio is a double even when written as an integer"},
        {"rule": "self.when < timestamp('2030-01-01T00:00:00Z')", "message": "date-time is a timestamp"},
        {
            "rule": "self.count > 0",
            "messageExpression": "'count must be positive, got ' + string(self.count)",
        },
    ]
    v = synthetic(rules)
    assert v.admit(thing(name="a-b", count=1, ratio=0, when="2026-01-01T00:00:00Z"), None)
    with pytest.raises(AdmissionError) as info:
        v.admit(thing(name="A-b-c", count=0, ratio=1, when="2031-01-01T00:00:00Z"), None)
    assert [str(e) for e in info.value.errors] == [
        "spec: Invalid value: two parts",
        "spec: Forbidden: lowercase",
        "spec: Invalid value: ratio is a double even when written as an integer",
        "spec: Invalid value: date-time is a timestamp",
        "spec: Invalid value: count must be positive, got 0",
    ]


def test_transition_rules_correlate_map_list_items_by_key() -> None:
    v = synthetic([])
    old = thing(items=[{"k": "a", "v": "1"}, {"k": "b", "v": "2"}])
    assert v.admit(thing(items=[{"k": "b", "v": "2"}, {"k": "a", "v": "1"}, {"k": "c", "v": "3"}]), old)
    with pytest.raises(AdmissionError) as info:
        v.admit(thing(items=[{"k": "b", "v": "2"}, {"k": "a", "v": "changed"}]), old)
    assert [str(e) for e in info.value.errors] == [
        'spec.items[1].v: Invalid value: "changed": v is immutable'
    ]


def test_a_rule_that_errors_at_runtime_rejects() -> None:
    v = synthetic([{"rule": "self.name == 'x'", "message": "name is x"}])
    with pytest.raises(AdmissionError) as info:
        v.admit(thing(count=1), None)  # no such key: name
    assert "evaluating rule: name is x" in str(info.value)


def test_rules_that_do_not_compile_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="does not compile"):
        synthetic([{"rule": "self.name ==", "message": "broken"}])


def test_reset_fields_models_the_status_subresource() -> None:
    v = validator()
    old = {"spec": {"a": 1}, "status": {"phase": "Building"}, "metadata": {"name": "x"}}
    new = {"spec": {"a": 2}, "status": {"phase": "Failed"}, "metadata": {"name": "x"}}
    assert v.reset_fields(new, old) == {
        "spec": {"a": 2},
        "status": {"phase": "Building"},
        "metadata": {"name": "x"},
    }
    assert v.reset_fields(new, old, subresource="status") == {
        "spec": {"a": 1},
        "status": {"phase": "Failed"},
        "metadata": {"name": "x"},
    }
    assert v.reset_fields(new, None) == {"spec": {"a": 2}, "metadata": {"name": "x"}}


def test_integral_floats_are_stored_as_integers_like_go_prints_them() -> None:
    spec = pb()["spec"]
    spec["retry"] = {"maxAttempts": 4.0, "backoff": {"factor": 2.0}}
    spec["submit"] = {
        "android": {
            "serviceAccountKeySecretRef": {"name": "p"},
            "releaseStatus": "inProgress",
            "rollout": 0.25,
        }
    }
    admitted = validator().admit(pb(spec), None)["spec"]
    assert type(admitted["retry"]["maxAttempts"]) is int
    assert type(admitted["retry"]["backoff"]["factor"]) is int
    assert admitted["submit"]["android"]["rollout"] == 0.25
