"""ClusterState: the API server's write semantics without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from publishing_testkit.kube_emulator.errors import ApiError
from publishing_testkit.kube_emulator.patching import JSON_PATCH, MERGE, STRATEGIC
from publishing_testkit.kube_emulator.resources import ResourceType
from publishing_testkit.kube_emulator.store import ClusterState, pruned_fields

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "things.example.dev"},
    "spec": {
        "group": "example.dev",
        "scope": "Namespaced",
        "names": {"plural": "things", "singular": "thing", "kind": "Thing", "shortNames": ["th"]},
        "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}}],
    },
}


@pytest.fixture
def state() -> ClusterState:
    cluster = ClusterState(event_log_size=10)
    cluster.create(cluster.find("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, CRD)
    return cluster


def things(state: ClusterState) -> ResourceType:
    return state.find("example.dev", "v1", "things")


def thing(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.dev/v1", "kind": "Thing", "metadata": {"name": name}, "spec": spec}


def test_a_crd_registers_its_resource_and_is_established(state: ClusterState) -> None:
    rtype = things(state)
    assert (rtype.kind, rtype.namespaced, rtype.short_names, rtype.status_subresource) == (
        "Thing",
        True,
        ("th",),
        True,
    )
    crd = state.get(
        state.find("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, "things.example.dev"
    )
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]} == {
        "NamesAccepted": "True",
        "Established": "True",
    }


def test_create_stamps_metadata_and_drops_status(state: ClusterState) -> None:
    before = state.rv
    obj = state.create(things(state), "default", {**thing("a", size=1), "status": {"phase": "Forged"}})
    meta = obj["metadata"]
    assert meta["namespace"] == "default" and meta["generation"] == 1 and meta["uid"]
    assert meta["resourceVersion"] == str(before + 1) and meta["creationTimestamp"].endswith("Z")
    assert "status" not in obj


def test_generation_moves_on_spec_changes_only_and_no_op_writes_keep_the_version(state: ClusterState) -> None:
    rtype = things(state)
    state.create(rtype, "default", thing("a", size=1))
    labelled = state.patch(rtype, "default", "a", MERGE, {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1
    status = state.patch(rtype, "default", "a", MERGE, {"status": {"phase": "Ready"}}, subresource="status")
    assert status["metadata"]["generation"] == 1 and status["status"] == {"phase": "Ready"}
    spec = state.patch(rtype, "default", "a", MERGE, {"spec": {"size": 2}})
    assert spec["metadata"]["generation"] == 2
    same = state.patch(rtype, "default", "a", MERGE, {"spec": {"size": 2}})
    assert same["metadata"]["resourceVersion"] == spec["metadata"]["resourceVersion"]


def test_status_and_spec_are_written_only_through_their_own_endpoints(state: ClusterState) -> None:
    rtype = things(state)
    state.create(rtype, "default", thing("a", size=1))
    via_status = state.patch(
        rtype, "default", "a", MERGE, {"spec": {"size": 9}, "status": {"p": 1}}, subresource="status"
    )
    assert via_status["spec"] == {"size": 1} and via_status["status"] == {"p": 1}
    via_main = state.patch(rtype, "default", "a", MERGE, {"status": {"p": 2}})
    assert via_main["status"] == {"p": 1}


def test_replace_needs_the_current_resource_version(state: ClusterState) -> None:
    rtype = things(state)
    created = state.create(rtype, "default", thing("a", size=1))
    updated = state.replace(rtype, "default", "a", {**created, "spec": {"size": 2}})
    with pytest.raises(ApiError) as stale:
        state.replace(rtype, "default", "a", {**created, "spec": {"size": 3}})
    assert (stale.value.code, stale.value.reason) == (409, "Conflict")
    without = {
        **updated,
        "metadata": {k: v for k, v in updated["metadata"].items() if k != "resourceVersion"},
    }
    with pytest.raises(ApiError) as missing:
        state.replace(rtype, "default", "a", without)
    assert missing.value.code == 422


def test_a_failed_json_patch_test_is_422_and_strategic_merge_is_415_for_custom_resources(
    state: ClusterState,
) -> None:
    rtype = things(state)
    state.create(rtype, "default", thing("a", size=1))
    with pytest.raises(ApiError) as failed:
        state.patch(
            rtype,
            "default",
            "a",
            JSON_PATCH,
            [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"}],
        )
    assert failed.value.code == 422
    with pytest.raises(ApiError) as unsupported:
        state.patch(rtype, "default", "a", STRATEGIC, {"spec": {"size": 2}})
    assert unsupported.value.code == 415


def test_finalizers_hold_deletion_until_removed(state: ClusterState) -> None:
    rtype = things(state)
    state.create(rtype, "default", {**thing("a"), "metadata": {"name": "a", "finalizers": ["x/y"]}})
    held = state.delete(rtype, "default", "a")
    assert held["metadata"]["deletionTimestamp"] and held["metadata"]["generation"] == 2
    with pytest.raises(ApiError) as refused:
        state.patch(rtype, "default", "a", MERGE, {"metadata": {"finalizers": ["x/y", "x/z"]}})
    assert refused.value.code == 422
    released = state.patch(rtype, "default", "a", MERGE, {"metadata": {"finalizers": None}})
    assert released["metadata"].get("finalizers") is None
    assert [event.type for event in state.log][-2:] == ["MODIFIED", "DELETED"]
    with pytest.raises(ApiError) as gone:
        state.get(rtype, "default", "a")
    assert gone.value.code == 404


def test_create_needs_an_existing_active_namespace_and_a_valid_name(state: ClusterState) -> None:
    rtype = things(state)
    with pytest.raises(ApiError) as absent:
        state.create(rtype, "nowhere", thing("a"))
    assert absent.value.code == 404
    with pytest.raises(ApiError) as bad_name:
        state.create(rtype, "default", thing("Not_Valid"))
    assert bad_name.value.code == 422
    generated = state.create(rtype, "default", {"metadata": {"generateName": "gen-"}, "spec": {}})
    assert generated["metadata"]["name"].startswith("gen-")


def test_events_since_replays_newer_events_and_expires_old_ones(state: ClusterState) -> None:
    rtype = things(state)
    start = state.rv
    for index in range(3):
        state.create(rtype, "default", thing(f"t{index}"))
    events = state.events_since(start)
    assert events is not None and [e.obj["metadata"]["name"] for e in events] == ["t0", "t1", "t2"]
    assert state.events_since(state.rv) == []
    for index in range(3, 15):
        state.create(rtype, "default", thing(f"t{index}"))
    assert state.events_since(start) is None  # beyond the 10-event log: 410 Gone for watchers


def test_pruned_fields_lists_what_admission_removed() -> None:
    before = {"spec": {"a": 1, "b": {"c": 2, "d": 3}}, "list": [{"x": 1, "y": 2}]}
    after = {"spec": {"a": 1, "b": {"c": 2}}, "list": [{"x": 1}]}
    assert pruned_fields(before, after) == ["spec.b.d", "list[0].y"]
