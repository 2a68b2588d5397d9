"""The CRD as a document: names, printer columns, a description and a limit on every field, and
`kubernetes-validate --strict`."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from publishing_operator import api
from publishing_operator.durations import DURATION_PATTERN

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "publishingbuild.yaml"


@functools.cache
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return loaded


def version() -> dict[str, Any]:
    versions = crd()["spec"]["versions"]
    assert len(versions) == 1
    served: dict[str, Any] = versions[0]
    return served


def root_schema() -> dict[str, Any]:
    schema: dict[str, Any] = version()["schema"]["openAPIV3Schema"]
    return schema


def fields(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every declared field below `schema` (list items' fields included), depth first."""
    for name, sub in (schema.get("properties") or {}).items():
        here = f"{path}.{name}"
        yield here, sub
        yield from fields(sub, here)
    if isinstance(schema.get("items"), dict):
        yield from fields(schema["items"], f"{path}[]")


def test_kubernetes_validate_strict_accepts_the_crd() -> None:
    tool = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run(
        [str(tool), "-k", "1.32.0", "--strict", str(CRD_PATH)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout + result.stderr


def test_names_scope_and_subresources() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == f"{api.PLURAL}.{api.GROUP}"
    assert spec["group"] == api.GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": api.KIND,
        "listKind": f"{api.KIND}List",
        "plural": api.PLURAL,
        "singular": api.SINGULAR,
        "shortNames": ["pb", "pbs"],
        "categories": ["publishing"],
    }
    assert version()["name"] == api.VERSION
    assert version()["served"] is True
    assert version()["storage"] is True
    assert version()["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = [
        (c["name"], c["type"], c["jsonPath"], c.get("priority", 0))
        for c in version()["additionalPrinterColumns"]
    ]
    assert columns == [
        ("Platform", "string", ".spec.app.platform", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Succeeded", "string", '.status.conditions[?(@.type=="Succeeded")].status', 0),
        ("Reason", "string", '.status.conditions[?(@.type=="Succeeded")].reason', 0),
        ("Attempt", "integer", ".status.attempt", 0),
        ("Build", "string", ".status.build.id", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]


def test_every_field_has_a_description() -> None:
    missing = [
        path for path, sub in fields(root_schema(), "") if path != ".metadata" and not sub.get("description")
    ]
    assert missing == []


def test_every_string_and_list_is_bounded_for_cel_cost_estimation() -> None:
    unbounded = []
    for path, sub in fields(root_schema(), ""):
        if path in (".apiVersion", ".kind"):
            continue
        kind = sub.get("type")
        if kind == "string" and not ("maxLength" in sub or "enum" in sub or sub.get("format") == "date-time"):
            unbounded.append(path)
        if kind == "array":
            if "maxItems" not in sub:
                unbounded.append(path)
            items = sub["items"]
            if items.get("type") == "string" and "maxLength" not in items:
                unbounded.append(path + "[]")
    assert unbounded == []


def test_status_is_fully_declared_and_conditions_are_a_map_list() -> None:
    status = root_schema()["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert status["properties"]["history"]["maxItems"] == api.HISTORY_LIMIT


def test_secret_keys_are_documented_where_users_look() -> None:
    spec = root_schema()["properties"]["spec"]["properties"]
    asc = spec["submit"]["properties"]["ios"]["properties"]["apiKeySecretRef"]["description"]
    for key in ("key-id", "issuer-id", "private-key"):
        assert key in asc
    signing = spec["signing"]["properties"]["secretRef"]["description"]
    for key in ("certificate.p12", "certificate-password", "provisioning-profile", "target-name"):
        assert key in signing
    for key in ("keystore.jks", "keystore-password", "key-alias", "key-password"):
        assert key in signing


def test_shared_patterns_match_the_models() -> None:
    spec = root_schema()["properties"]["spec"]["properties"]
    timeouts = spec["timeouts"]["properties"]
    assert timeouts["build"]["pattern"] == DURATION_PATTERN
    assert spec["app"]["properties"]["projectId"]["pattern"] == api.UUID_PATTERN


def test_rule_messages_match_the_models() -> None:
    """The in-process validation says the same words as the API server."""
    messages = set()
    for _, sub in [("", root_schema()), *fields(root_schema(), "")]:
        messages |= {rule["message"] for rule in sub.get("x-kubernetes-validations", [])}
    for name in dir(api):
        if name.startswith("MSG_"):
            assert getattr(api, name) in messages, name


def field_counts() -> dict[str, int]:
    counts = {"spec": 0, "status": 0, "objects": 0, "leaves": 0}
    for part in ("spec", "status"):
        for _, sub in fields(root_schema()["properties"][part], part):
            counts[part] += 1
            is_object = sub.get("type") == "object" or sub.get("items", {}).get("type") == "object"
            counts["objects" if is_object else "leaves"] += 1
    return counts


def test_field_count_is_what_the_issue_note_reports() -> None:
    # 99 fields (20 objects or object lists, 79 leaves); quoted in the issue note, update both together.
    # (status.cancelHandledGeneration added for issue 9; requestCount, build.receiptId and the two
    # claimedBy for the exactly-once start of issue 15.)
    assert field_counts() == {"spec": 48, "status": 51, "objects": 20, "leaves": 79}
