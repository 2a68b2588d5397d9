"""The emulator's formats: patches, selectors, printer-column JSONPath, ages, the sandbox's live table."""

from __future__ import annotations

import datetime
import io

import pytest

from publishing_testkit.kube_emulator.bodies import go_quote
from publishing_testkit.kube_emulator.errors import ApiError
from publishing_testkit.kube_emulator.jsonpath import compile_path
from publishing_testkit.kube_emulator.patching import json_patch, merge_patch, strategic_merge_patch
from publishing_testkit.kube_emulator.selectors import parse_field_selector, parse_label_selector
from publishing_testkit.kube_emulator.table import human_duration
from publishing_testkit.sandbox.live_table import LiveTable


def test_merge_patch_merges_objects_deletes_nulls_and_replaces_lists() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(target, {"a": {"b": None, "d": 3}, "l": [3]}) == {"a": {"c": 2, "d": 3}, "l": [3]}
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2]}  # never mutated


def test_json_patch_operations_and_failed_test() -> None:
    doc = {"metadata": {"finalizers": ["a"]}, "spec": {"x": 1}}
    patched = json_patch(doc, [
        {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
        {"op": "replace", "path": "/spec/x", "value": 2},
        {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
        {"op": "move", "from": "/spec/y", "path": "/spec/z"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
        {"op": "test", "path": "/spec/z", "value": 2},
    ])  # fmt: skip
    assert patched == {"metadata": {"finalizers": ["b"]}, "spec": {"x": 2, "z": 2}}
    with pytest.raises(ApiError) as failed:
        json_patch(doc, [{"op": "test", "path": "/spec/x", "value": 5}])
    assert failed.value.code == 422
    with pytest.raises(ApiError) as malformed:
        json_patch(doc, {"op": "add"})
    assert malformed.value.code == 400


def test_strategic_merge_patch_merges_keyed_lists_and_drops_directives() -> None:
    target = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}
    patch = {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}]},
    }
    assert strategic_merge_patch(target, patch) == {"spec": {"containers": [{"name": "b", "image": "2"}]}}


def test_label_selectors() -> None:
    obj = {"metadata": {"labels": {"tier": "gold", "app": "mobile"}}}
    matches = lambda text: parse_label_selector(text)(obj)  # noqa: E731
    assert matches("tier=gold,app") and matches("tier in (gold,silver)") and matches("!missing")
    assert matches("tier!=silver") and matches("missing!=x") and matches("app notin (web)")
    assert not matches("tier==silver") and not matches("missing") and not matches("tier notin (gold)")
    with pytest.raises(ApiError):
        parse_label_selector("tier in gold")


def test_field_selectors() -> None:
    obj = {
        "metadata": {"name": "a", "namespace": "ns"},
        "involvedObject": {"name": "x"},
        "spec": {"on": True},
    }
    assert parse_field_selector("metadata.name=a,metadata.namespace==ns")(obj)
    assert parse_field_selector("involvedObject.name=x,spec.on=true,metadata.name!=b")(obj)
    assert not parse_field_selector("metadata.name=b")(obj)


def test_printer_column_jsonpath() -> None:
    obj = {
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "Succeeded", "status": "True"}]
        }
    }
    assert compile_path('.status.conditions[?(@.type=="Succeeded")].status')(obj) == ["True"]
    assert compile_path(".status.conditions[*].type")(obj) == ["Ready", "Succeeded"]
    assert compile_path(".status.conditions[0].status")(obj) == ["False"]
    assert compile_path("{.status.missing}")(obj) == []


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(5, "5s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (7200, "120m"), (4 * 3600 + 60, "4h1m"),
     (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"), (20 * 86400, "20d"), (-5, "<invalid>")],
)  # fmt: skip
def test_ages_read_like_kubectl(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_live_table_prints_changes_as_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    table = LiveTable(out, "header", interactive=False)
    now = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    build = {"metadata": {"namespace": "default", "name": "b", "creationTimestamp": "2026-01-01T11:59:00Z"},
             "spec": {"app": {"platform": "ios"}}}  # fmt: skip
    table.update([build], now)
    table.update([build], now)  # unchanged: no new line
    condition = {"type": "Succeeded", "status": "Unknown", "reason": "Queued"}
    running = {
        **build,
        "status": {"phase": "Building", "attempt": 1, "build": {"id": "b-1"}, "conditions": [condition]},
    }
    table.update([running], now)
    table.update([], now)
    assert out.getvalue().splitlines() == [
        "12:00:00 default/b (ios) phase=Pending",
        "12:00:00 default/b (ios) phase=Building reason=Queued attempt=1 build=b-1",
        "12:00:00 default/b deleted",
    ]


def test_live_table_redraws_on_a_terminal() -> None:
    out = io.StringIO()
    now = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    build = {"metadata": {"namespace": "default", "name": "b", "creationTimestamp": "2026-01-01T11:59:00Z"},
             "spec": {"app": {"platform": "android"}}, "status": {"phase": "Succeeded"}}  # fmt: skip
    LiveTable(out, "header", interactive=True).update([build], now)
    screen = out.getvalue()
    assert screen.startswith("\x1b[H\x1b[Jheader")
    assert screen.splitlines()[-2].split() == [
        "NAME",
        "PLATFORM",
        "PHASE",
        "REASON",
        "ATTEMPT",
        "BUILD",
        "AGE",
    ]
    assert screen.splitlines()[-1].split() == ["b", "android", "Succeeded", "-", "-", "-", "60s"]


def test_live_table_notices_stay_visible() -> None:
    now = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    screen = io.StringIO()
    live = LiveTable(screen, "header", interactive=True)
    live.notice("the operator stopped")
    live.update([], now)
    live.update([], now)
    assert screen.getvalue().rsplit("\x1b[H\x1b[J", 1)[1].startswith("header\n  ! the operator stopped\n")
    lines = io.StringIO()
    LiveTable(lines, "header", interactive=False).notice("the operator stopped")
    assert lines.getvalue() == "the operator stopped\n"


def test_field_names_are_quoted_as_go_quotes_them() -> None:
    # kube-apiserver names unknown fields with %q: `unknown field "a\"b\x1f"`; a raw control
    # character would also break the Warning header it travels in.
    assert go_quote("spec.x") == '"spec.x"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("\x1f\n\t\x7f") == '"\\x1f\\n\\t\\x7f"'
    assert go_quote("é\u2028") == '"é\\u2028"'
