"""Requests the operator (kopf, KubeApi) and kubectl really send, on both API servers: the same
status code, reason, details and message, the same Warning headers, and the same resulting object
once uid, timestamps, resourceVersion values and managedFields are taken out."""

from __future__ import annotations

import copy
from typing import Any

from tests.differential.normalize import assert_same, status_fields
from tests.differential.pair import Pair
from tests.fixtures.kube import Kube
from tests.unit.test_crd_rules import ios_submit, obj

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def pb(name: str, **labels: str) -> dict[str, Any]:
    body = obj(ios_submit())
    body["metadata"] = {"name": name, "namespace": "default", "labels": labels}
    return body


def pbs(kube: Kube) -> str:
    return kube.path("publishingbuilds")


def one(name: str, subresource: str = "") -> Any:
    return lambda kube: kube.path("publishingbuilds", name) + (f"/{subresource}" if subresource else "")


def in_ns(pair: Pair, body: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(body)
    copied["metadata"]["namespace"] = pair.namespace
    return copied


# ---- create, get, list -----------------------------------------------------------------------


async def test_create_answers_the_defaulted_object(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a", team="x")))


async def test_create_twice_is_409_already_exists(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    await pair.same("POST", pbs, in_ns(pair, pb("a")))


async def test_create_with_generate_name(pair: Pair) -> None:
    body = in_ns(pair, pb("x"))
    body["metadata"] = {"generateName": "gen-", "namespace": pair.namespace}
    emulator, real = await pair.send("POST", pbs, body)
    assert emulator.code == real.code == 201
    for answer in (emulator, real):
        name = answer.body["metadata"]["name"]
        assert name.startswith("gen-") and len(name) == len("gen-") + 5


async def test_create_in_a_missing_namespace_is_404(pair: Pair) -> None:
    body = pb("a")
    body["metadata"]["namespace"] = "absent"
    await pair.same("POST", "/apis/publishing.dev/v1alpha1/namespaces/absent/publishingbuilds", body)


async def test_create_with_a_namespace_that_contradicts_the_path_is_400(pair: Pair) -> None:
    body = pb("a")
    body["metadata"]["namespace"] = "elsewhere"
    await pair.same("POST", pbs, body)


async def test_dry_run_create_persists_nothing(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")), params={"dryRun": "All"})
    await pair.same("GET", one("a"))


async def test_get_and_get_missing(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    await pair.same("GET", one("a"))
    await pair.same("GET", one("missing"))


async def test_unknown_resource_is_404(pair: Pair) -> None:
    await pair.same("GET", lambda kube: f"/apis/publishing.dev/v1alpha1/namespaces/{kube.namespace}/gadgets")


async def test_unknown_subresource_is_404(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    await pair.same("GET", one("a", "scale"))
    await pair.same("GET", one("missing", "logs"))


async def test_list_with_label_and_field_selectors(pair: Pair) -> None:
    for name, team in (("a", "x"), ("b", "y"), ("c", "x")):
        await pair.same("POST", pbs, in_ns(pair, pb(name, team=team)))
    await pair.same("GET", pbs)
    await pair.same("GET", pbs, params={"labelSelector": "team=x"})
    await pair.same("GET", pbs, params={"labelSelector": "team in (y),team!=x"})
    await pair.same("GET", pbs, params={"labelSelector": "!team"})
    await pair.same("GET", pbs, params={"fieldSelector": "metadata.name=b"})
    await pair.same("GET", pbs, params={"fieldSelector": "metadata.name!=b"})


async def test_list_with_a_malformed_selector_is_400(pair: Pair) -> None:
    await pair.same("GET", pbs, params={"labelSelector": "team=="})
    await pair.same("GET", pbs, params={"fieldSelector": "spec.app.platform=ios"})


async def test_list_pages_with_limit_and_continue(pair: Pair) -> None:
    for name in ("a", "b", "c"):
        await pair.same("POST", pbs, in_ns(pair, pb(name)))
    emulator, real = await pair.same("GET", pbs, params={"limit": "2"})
    for kube, answer in zip(pair.both(), (emulator, real), strict=True):
        token = answer.body["metadata"]["continue"]
        code, rest = await kube.request("GET", f"{pbs(kube)}?limit=2&continue={token}")
        assert code == 200 and [item["metadata"]["name"] for item in rest["items"]] == ["c"]
        assert not rest["metadata"].get(
            "continue"
        )  # "" on kube-apiserver: custom resource lists keep the key


# ---- patches and updates -----------------------------------------------------------------------


async def test_merge_patch_on_the_object_and_on_status(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    await pair.same(
        "PATCH", one("a"), {"spec": {"cancel": True}, "status": {"phase": "Nope"}}, content_type=MERGE
    )
    status = {"status": {"phase": "Building", "attempt": 1, "conditions": [
        {"type": "Succeeded", "status": "Unknown", "reason": "Building", "message": "m",
         "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2}]}}  # fmt: skip
    await pair.same("PATCH", one("a", "status"), status, content_type=MERGE)
    await pair.same("PATCH", one("a", "status"), {"status": {"attempt": None}}, content_type=MERGE)
    await pair.same("GET", one("a"))


async def test_a_noop_patch_keeps_the_resource_version(pair: Pair) -> None:
    for kube in pair.both():
        code, created = await kube.request("POST", pbs(kube), in_ns(pair, pb("a")))
        assert code == 201
        code, patched = await kube.request(
            "PATCH", one("a")(kube), {"spec": {"cancel": False}}, content_type=MERGE
        )
        assert (
            code == 200 and patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        )


async def test_json_patch_as_kopf_adds_a_finalizer(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    for kube in pair.both():  # kopf tests the resourceVersion it saw: each server's own value
        code, current = await kube.request("GET", one("a")(kube))
        version = current["metadata"]["resourceVersion"]
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "add", "path": "/metadata/finalizers", "value": ["publishing.dev/eas-work"]},
        ]
        code, _ = await kube.request("PATCH", one("a")(kube), patch, content_type=JSON_PATCH)
        assert code == 200
    await pair.same("GET", one("a"))
    stale = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "remove", "path": "/metadata/finalizers"},
    ]
    await pair.same("PATCH", one("a"), stale, content_type=JSON_PATCH)
    await pair.same("PATCH", one("a"), [{"op": "remove", "path": "/spec/nothing"}], content_type=JSON_PATCH)
    await pair.same("PATCH", one("a"), [{"op": "bogus", "path": "/spec"}], content_type=JSON_PATCH)


async def test_strategic_merge_patch_is_415_on_a_custom_resource(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    await pair.same("PATCH", one("a"), {"spec": {"cancel": True}}, content_type=STRATEGIC)


async def test_strategic_merge_patch_on_a_core_object(pair: Pair) -> None:
    def secrets(kube: Kube) -> str:
        return kube.path("secrets")

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": pair.namespace,
              "labels": {"a": "1"}}, "stringData": {"token": "abc"}}  # fmt: skip
    await pair.same("POST", secrets, secret)
    patch = {"metadata": {"labels": {"b": "2"}}, "data": {"more": "eHl6"}}
    await pair.same("PATCH", lambda kube: f"{secrets(kube)}/s", patch, content_type=STRATEGIC)


async def test_put_with_a_stale_resource_version_is_409_conflict(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    answers = []
    for kube in pair.both():
        code, current = await kube.request("GET", one("a")(kube))
        stale = {**current, "metadata": {**current["metadata"], "resourceVersion": "1"}}
        stale["spec"]["cancel"] = True
        code, body = await kube.request("PUT", one("a")(kube), stale)
        answers.append((code, status_fields(body)))
    assert_same(*answers)


async def test_put_without_a_resource_version_is_422(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    await pair.same("PUT", one("a"), in_ns(pair, pb("a")))


async def test_status_put_changes_status_only(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    for kube in pair.both():
        code, current = await kube.request("GET", one("a")(kube))
        current["status"] = {"phase": "Queued"}
        current["spec"]["cancel"] = True
        code, _ = await kube.request("PUT", one("a", "status")(kube), current)
        assert code == 200
    await pair.same("GET", one("a"))


# ---- finalizers and deletion ---------------------------------------------------------------------


async def test_delete_with_a_finalizer_then_release_it(pair: Pair) -> None:
    body = in_ns(pair, pb("a"))
    body["metadata"]["finalizers"] = ["publishing.dev/eas-work"]
    await pair.same("POST", pbs, body)
    await pair.same("DELETE", one("a"))
    await pair.same("GET", one("a"))
    add = {"metadata": {"finalizers": ["publishing.dev/eas-work", "other.dev/x"]}}
    await pair.same("PATCH", one("a"), add, content_type=MERGE)
    await pair.same("PATCH", one("a"), {"metadata": {"finalizers": None}}, content_type=MERGE)
    await pair.same("GET", one("a"))
    await pair.same("DELETE", one("a"))


async def test_delete_without_finalizers_answers_the_object(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    await pair.same("DELETE", one("a"))


async def test_delete_with_a_uid_precondition_that_does_not_match_is_409(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-the-uid"}}
    emulator, real = await pair.send("DELETE", one("a"), options)
    for kube, answer in zip(pair.both(), (emulator, real), strict=True):
        _, current = await kube.request("GET", one("a")(kube))
        answer.body["message"] = answer.body["message"].replace(current["metadata"]["uid"], "<uid>")
    assert_same(emulator.comparable(), real.comparable())


# ---- strict decoding, the issue-9 typo -------------------------------------------------------------


async def test_a_typo_in_a_required_field(pair: Pair) -> None:
    body = in_ns(pair, pb("typo"))
    body["spec"]["app"]["platfrom"] = body["spec"]["app"].pop("platform")
    await pair.same("POST", pbs, body, params={"fieldValidation": "Strict"})  # what kubectl sends
    await pair.same("POST", pbs, body, params={"fieldValidation": "Warn"})
    await pair.same("POST", pbs, body)  # what the operator's clients send: no fieldValidation


async def test_unknown_fields_are_pruned_with_a_warning(pair: Pair) -> None:
    body = in_ns(pair, pb("a"))
    body["spec"]["extra"] = 1
    body["spec"]["app"]["colour"] = "red"
    await pair.same("POST", pbs, body)
    await pair.same("GET", one("a"))


# ---- RBAC ------------------------------------------------------------------------------------------


async def test_a_serviceaccount_without_permission_is_403(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a")))
    tokens = {id(kube): kube.serviceaccount_token("default", "nobody") for kube in pair.both()}

    async def as_nobody(method: str, path: Any) -> None:
        answers = []
        for kube in pair.both():
            headers = {"Authorization": f"Bearer {tokens[id(kube)]}"}
            answers.append(await kube.request(method, path(kube), headers=headers))
        (code_e, body_e), (code_r, body_r) = answers
        assert_same((code_e, status_fields(body_e)), (code_r, status_fields(body_r)))

    await as_nobody("GET", pbs)
    await as_nobody("GET", one("a"))
    await as_nobody("DELETE", one("a"))
    await as_nobody("GET", lambda kube: "/api/v1/secrets")


# ---- Table output -----------------------------------------------------------------------------------


async def test_table_output_has_the_printer_columns(pair: Pair) -> None:
    await pair.same("POST", pbs, in_ns(pair, pb("a", team="x")))
    await pair.same(
        "PATCH", one("a", "status"), {"status": {"phase": "Queued", "attempt": 1}}, content_type=MERGE
    )
    emulator, real = await pair.send("GET", pbs, accept=TABLE)
    for answer in (emulator, real):
        for row in answer.body["rows"]:
            row["cells"][-1] = "<age>"  # the Age column: seconds since creation on each server
    assert_same(emulator.comparable(), real.comparable())
    emulator, real = await pair.send("GET", pbs, accept=TABLE, params={"includeObject": "Object"})
    assert [row["object"]["kind"] for row in emulator.body["rows"]] == [
        row["object"]["kind"] for row in real.body["rows"]
    ]
