"""The API at the HTTP level: the official `kubernetes` client, raw requests, watch semantics.

Written against the emulator and run on the real API server too (PUBLISHING_TEST_API=real): what
passes on both is behaviour the emulator shares with kube-apiserver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import kmock
import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from publishing_testkit.kube_emulator import serve_emulator
from tests.fixtures.kube import Kube

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
WIDGETS = "/apis/example.dev/v1/namespaces/default/widgets"

STATUS_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "phase": {"type": "string"},
        "created": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},  # kopf's handler results
        "conditions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
            },
        },
    },
}

# A small CRD of the test's own: status subresource, a default, a CEL rule, printer columns.
WIDGET_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.dev"},
    "spec": {
        "group": "example.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                    },
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer", "default": 1, "minimum": 1},
                                    "colour": {"type": "string"},
                                },
                                "x-kubernetes-validations": [
                                    {"rule": "self.size <= 10", "message": "size must be at most 10"}
                                ],
                            },
                            "status": STATUS_SCHEMA,
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, **labels: str) -> Obj:
    return {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name, "labels": labels},
        "spec": {"size": 2},
    }


def official_client(kube: Kube) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def test_official_client_crud_status_generation_and_conflicts(kube: Kube) -> None:
    kube.apply([WIDGET_CRD])
    team = kube.other_namespace("team-a")
    with official_client(kube) as api_client:
        core = kubernetes.client.CoreV1Api(api_client)
        custom = kubernetes.client.CustomObjectsApi(api_client)

        core.create_namespace({"metadata": {"name": team}})
        assert team in [ns.metadata.name for ns in core.list_namespace().items]

        created = custom.create_namespaced_custom_object("example.dev", "v1", team, "widgets", widget("w1"))
        meta = created["metadata"]
        assert meta["generation"] == 1 and meta["uid"] and int(meta["resourceVersion"]) > 0

        # /status writes status only; generation does not move.
        patched = custom.patch_namespaced_custom_object_status(
            "example.dev", "v1", team, "widgets", "w1",
            {"status": {"phase": "Ready"}, "spec": {"size": 9}},
        )  # fmt: skip
        assert patched["status"] == {"phase": "Ready"}
        assert patched["spec"]["size"] == 2
        assert patched["metadata"]["generation"] == 1
        assert int(patched["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])

        # The main resource ignores status; a spec change moves the generation.
        patched = custom.patch_namespaced_custom_object(
            "example.dev",
            "v1",
            team,
            "widgets",
            "w1",
            {"spec": {"size": 3}, "status": {"phase": "Hacked"}},
        )
        assert patched["status"] == {"phase": "Ready"}
        assert patched["metadata"]["generation"] == 2

        # A no-op patch keeps the resourceVersion (no write, no event).
        again = custom.patch_namespaced_custom_object(
            "example.dev", "v1", team, "widgets", "w1", {"spec": {"size": 3}}
        )
        assert again["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]

        # PUT with a stale resourceVersion is 409; a failed JSON-patch test is 422.
        stale = {**created, "spec": {"size": 5}}
        with pytest.raises(ApiException) as conflict:
            custom.replace_namespaced_custom_object("example.dev", "v1", team, "widgets", "w1", stale)
        assert conflict.value.status == 409
        assert json.loads(conflict.value.body)["reason"] == "Conflict"
        with pytest.raises(ApiException) as failed_test:
            custom.patch_namespaced_custom_object(
                "example.dev", "v1", team, "widgets", "w1",
                [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
                 {"op": "replace", "path": "/spec/size", "value": 4}],
                _content_type="application/json-patch+json",
            )  # fmt: skip
        assert failed_test.value.status == 422

        # Schema: defaulting, and a CEL rule answered as 422 Invalid with the rule's message.
        defaulted = custom.create_namespaced_custom_object(
            "example.dev", "v1", team, "widgets", {**widget("w2"), "spec": {}}
        )
        assert defaulted["spec"]["size"] == 1
        with pytest.raises(ApiException) as invalid:
            custom.create_namespaced_custom_object(
                "example.dev", "v1", team, "widgets", {**widget("w3"), "spec": {"size": 11}}
            )
        assert invalid.value.status == 422
        body = json.loads(invalid.value.body)
        assert body["reason"] == "Invalid" and "size must be at most 10" in body["message"]

        # generateName, label and field selectors.
        generated = custom.create_namespaced_custom_object(
            "example.dev", "v1", team, "widgets",
            {"apiVersion": "example.dev/v1", "kind": "Widget",
             "metadata": {"generateName": "auto-", "labels": {"tier": "x"}}, "spec": {}},
        )  # fmt: skip
        assert generated["metadata"]["name"].startswith("auto-") and len(generated["metadata"]["name"]) == 10
        by_label = custom.list_namespaced_custom_object(
            "example.dev", "v1", team, "widgets", label_selector="tier=x"
        )
        assert [item["metadata"]["name"] for item in by_label["items"]] == [generated["metadata"]["name"]]
        assert by_label["kind"] == "WidgetList" and by_label["apiVersion"] == "example.dev/v1"
        by_field = custom.list_cluster_custom_object(
            "example.dev", "v1", "widgets", field_selector="metadata.name=w1"
        )
        assert [item["metadata"]["namespace"] for item in by_field["items"]] == [team]

        with pytest.raises(ApiException) as missing:
            custom.get_namespaced_custom_object("example.dev", "v1", team, "widgets", "nope")
        assert missing.value.status == 404

        # Secrets: stringData is folded into base64 data.
        core.create_namespaced_secret(team, {"metadata": {"name": "s"}, "stringData": {"token": "abc"}})
        assert core.read_namespaced_secret("s", team).data == {"token": "YWJj"}


async def test_namespace_deletion_waits_for_finalizers_and_refuses_new_content(kube: Kube) -> None:
    gone = kube.other_namespace("gone")
    kube.apply([WIDGET_CRD, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": gone}}])
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.dev/hold"]
    widgets = kube.path("widgets", namespace=gone)
    status, _ = await kube.request("POST", widgets, held)
    assert status == 201

    status, ns = await kube.request("DELETE", f"/api/v1/namespaces/{gone}")
    assert status == 200 and ns["status"]["phase"] == "Terminating"
    status, refused = await kube.request("POST", widgets, widget("new"))
    assert status == 403 and "being terminated" in refused["message"]

    if kube.real:
        # kube-apiserver only marks the namespace; emptying and removing it is the namespace
        # controller's work (kube-controller-manager), which does not run beside it here.
        return
    obj = await kube.get("widgets", "held", gone)
    assert obj is not None and obj["metadata"]["deletionTimestamp"]
    patch = {"metadata": {"finalizers": None}}
    status, _ = await kube.request(
        "PATCH", f"{widgets}/held", patch, content_type="application/merge-patch+json"
    )
    assert status == 200
    await kube.wait_for(lambda ns: ns is None, "namespaces", gone, None)


async def test_refusals_with_the_api_servers_codes(kube: Kube) -> None:
    kube.apply([WIDGET_CRD, widget("w1")])
    widgets = kube.path("widgets")

    def field(number: int, payload: bytes) -> bytes:  # a length-delimited protobuf field
        return bytes([number << 3 | 2, len(payload)]) + payload

    envelope = b"k8s\x00" + field(1, field(1, b"example.dev/v1") + field(2, b"Widget")) + field(2, b"")
    protobuf = "application/vnd.kubernetes.protobuf"
    if kube.real:
        # kube-apiserver v1.37.2 panics on it (a nil decoder in the CRD handler's
        # schemaCoercingDecoder, see its log) and drops the connection without an answer. The
        # emulator answers what the server means to: custom resources have no protobuf form.
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await kube.request("POST", widgets, envelope, content_type=protobuf)
    else:
        status, body = await kube.request("POST", widgets, envelope, content_type=protobuf)
        assert status == 415 and body["reason"] == "UnsupportedMediaType"
    status, body = await kube.request(
        "PATCH", f"{widgets}/w1", {"spec": {"size": 3}}, content_type="application/strategic-merge-patch+json"
    )
    assert status == 415  # custom resources take no strategic merge patch, as on a real server
    status, body = await kube.request("POST", widgets, widget("w1"))
    assert status == 409 and body["reason"] == "AlreadyExists"
    status, body = await kube.request("POST", "/apis/example.dev/v1/namespaces/absent/widgets", widget("x"))
    assert status == 404 and body["message"] == 'namespaces "absent" not found'
    status, body = await kube.request("GET", f"/apis/example.dev/v1/namespaces/{kube.namespace}/gadgets")
    assert status == 404


async def test_table_format_has_the_printer_columns(kube: Kube) -> None:
    kube.apply([WIDGET_CRD, widget("w1")])
    widgets = kube.path("widgets")
    status, table = await kube.request(
        "GET", widgets, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    )
    assert status == 200 and table["kind"] == "Table"
    assert [column["name"] for column in table["columnDefinitions"]] == ["Name", "Size", "Ready", "Age"]
    assert table["rows"][0]["cells"][:3] == ["w1", 2, None]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


# ---- watch -----------------------------------------------------------------------------------


SessionFactory = Callable[[], aiohttp.ClientSession]


async def watch_events(sessions: SessionFactory, path: str, params: dict[str, str]) -> AsyncIterator[Obj]:
    async with (
        sessions() as session,
        session.get(path, params={"watch": "true", **params}) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        async for line in response.content:
            if line.strip():
                yield json.loads(line)


async def collect(
    sessions: SessionFactory,
    path: str,
    params: dict[str, str],
    count: int,
    *,
    skip_bookmarks: bool = True,
    timeout: float = 10,
) -> list[Obj]:
    events: list[Obj] = []

    async def run() -> None:
        async for event in watch_events(sessions, path, params):
            if skip_bookmarks and event["type"] == "BOOKMARK":
                continue
            events.append(event)
            if len(events) >= count:
                return

    await asyncio.wait_for(run(), timeout=timeout)
    return events


def summary(events: list[Obj]) -> list[tuple[str, str]]:
    return [(event["type"], event["object"]["metadata"].get("name", "")) for event in events]


async def test_watch_from_a_resource_version_sends_only_newer_events(kube: Kube) -> None:
    kube.apply([WIDGET_CRD, widget("a"), widget("b")])
    widgets = kube.path("widgets")
    _, listing = await kube.request("GET", widgets)
    since = listing["metadata"]["resourceVersion"]

    await kube.request(
        "PATCH", f"{widgets}/a", {"spec": {"size": 5}}, content_type="application/merge-patch+json"
    )
    kube.apply([widget("c")])
    await kube.request("DELETE", f"{widgets}/b")
    events = await collect(kube.client_session, widgets, {"resourceVersion": since}, 3)
    assert summary(events) == [("MODIFIED", "a"), ("ADDED", "c"), ("DELETED", "b")]
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events]
    assert versions == sorted(versions) and versions[0] > int(since)

    # A reconnect from the last seen version gets only what came after it.
    kube.apply([widget("d")])
    again = await collect(kube.client_session, widgets, {"resourceVersion": str(versions[-1])}, 1)
    assert summary(again) == [("ADDED", "d")]

    # No resourceVersion: the current objects as ADDED first.
    initial = await collect(kube.client_session, widgets, {}, 3)
    assert sorted(summary(initial)) == [("ADDED", "a"), ("ADDED", "c"), ("ADDED", "d")]


async def test_watch_initial_events_and_bookmarks(kube: Kube) -> None:
    kube.apply([WIDGET_CRD, widget("a")])
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    # The emulator sends its periodic bookmark every second in tests; kube-apiserver about once a
    # minute (seen: 60 s after the watch started), too slow for the suite: there, only the first two.
    count = 2 if kube.real else 3
    events = await collect(kube.client_session, kube.path("widgets"), params, count, skip_bookmarks=False)
    assert summary(events)[0] == ("ADDED", "a")
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    if kube.real:
        return
    assert events[2]["type"] == "BOOKMARK"  # the periodic one
    assert int(events[2]["object"]["metadata"]["resourceVersion"]) >= int(
        events[1]["object"]["metadata"]["resourceVersion"]
    )


async def test_watch_with_a_selector_sees_objects_enter_and_leave(kube: Kube) -> None:
    kube.apply([WIDGET_CRD, widget("a", tier="gold")])
    widgets = kube.path("widgets")
    _, listing = await kube.request("GET", widgets)
    since = listing["metadata"]["resourceVersion"]
    relabel = "application/merge-patch+json"
    await kube.request(
        "PATCH", f"{widgets}/a", {"metadata": {"labels": {"tier": "silver"}}}, content_type=relabel
    )
    await kube.request(
        "PATCH", f"{widgets}/a", {"metadata": {"labels": {"tier": "gold"}}}, content_type=relabel
    )
    params = {"resourceVersion": since, "labelSelector": "tier=gold"}
    events = await collect(kube.client_session, widgets, params, 2)
    assert summary(events) == [("DELETED", "a"), ("ADDED", "a")]


@pytest.mark.emulator_only(
    "an emulator of its own with an event log of 3 events; the real watch cache keeps far more"
)
async def test_watch_from_a_too_old_resource_version_is_410_gone() -> None:
    async with serve_emulator(event_log_size=3) as handle:
        await handle.apply([WIDGET_CRD, *[widget(f"w{i}") for i in range(5)]])
        events = await collect(handle.client_session, WIDGETS, {"resourceVersion": "2"}, 1)
        assert events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
        current = str(handle.state.rv)
        await handle.apply([widget("late")])
        fresh = await collect(handle.client_session, WIDGETS, {"resourceVersion": current}, 1)
        assert summary(fresh) == [("ADDED", "late")]


async def test_lists_page_with_limit_and_continue(kube: Kube) -> None:
    kube.apply([WIDGET_CRD, *[widget(f"w{index}") for index in range(5)]])
    widgets = kube.path("widgets")
    names: list[str] = []
    token = ""
    for _ in range(5):
        status, page = await kube.request(
            "GET", f"{widgets}?limit=2" + (f"&continue={token}" if token else "")
        )
        assert status == 200 and len(page["items"]) <= 2
        names += [item["metadata"]["name"] for item in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 5 - len(names)
    assert names == [f"w{index}" for index in range(5)]
    chunked = kube.kubectl("get", "widgets", "--chunk-size=2", "-o", "name").stdout.split()
    assert chunked == [f"widget.example.dev/w{index}" for index in range(5)]


@pytest.mark.emulator_only("kmock's reactions (fault injection, request log) exist only in the emulator")
async def test_kmock_reactions_inject_faults_and_record_requests(kube: Kube) -> None:
    kube.apply([WIDGET_CRD, widget("a")])
    emulator = kube.handle.emulator
    widgets = kmock.resource("example.dev", "v1", "widgets")
    (
        emulator[kmock.action.UPDATE, widgets][:1]
        << 503
        << {"kind": "Status", "code": 503, "reason": "ServiceUnavailable"}
    )
    fetched: list[kmock.Request] = []
    emulator[kmock.action.FETCH, widgets] >> fetched

    merge = "application/merge-patch+json"
    first, body = await kube.request("PATCH", f"{WIDGETS}/a", {"spec": {"size": 3}}, content_type=merge)
    assert (first, body["reason"]) == (503, "ServiceUnavailable")  # the injected fault, once
    second, body = await kube.request("PATCH", f"{WIDGETS}/a", {"spec": {"size": 4}}, content_type=merge)
    assert (second, body["spec"]) == (200, {"size": 4})  # then the emulator answers again
    for _ in range(2):
        obj = await kube.get("widgets", "a")
        assert obj is not None and obj["spec"] == {"size": 4}
    assert [request.name for request in fetched] == ["a", "a"]
