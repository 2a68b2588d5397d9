"""The pydantic models and the CRD schema agree field by field.

Both trees are walked together: property names (the models' camelCase aliases), types, enums,
required fields, defaults (the CRD's after its own nested defaulting, against the models' defaults
dumped to JSON), and the limits (pattern, lengths, bounds, item counts, date-time format). Any
difference is reported with its path.
"""

from __future__ import annotations

import copy
import functools
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from publishing_operator import api
from publishing_testkit.kube_emulator.admission import CRDValidator

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "publishingbuild.yaml"
LIMITS = ("pattern", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems")

Node = dict[str, Any]
VISITED: list[str] = []  # every path compare() looked at, to prove the walk covers the whole tree


@functools.cache
def crd_root() -> Node:
    loaded: Node = yaml.safe_load(CRD_PATH.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return loaded


def model_schema(model: type[BaseModel]) -> tuple[Node, dict[str, Node]]:
    schema = model.model_json_schema(by_alias=True)
    return schema, schema.get("$defs", {})


def resolve(node: Node, defs: dict[str, Node]) -> Node:
    """Follow $ref and drop the `null` branch of Optional fields."""
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        assert len(branches) == 1, node
        node = {**{k: v for k, v in node.items() if k != "anyOf"}, **branches[0]}
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[1]]
        node = {**{k: v for k, v in node.items() if k != "$ref"}, **resolve(target, defs)}
    return node


def json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [json_default(v) for v in value]
    return value


def model_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """alias -> JSON default; a missing alias means the field is required."""
    out = {}
    for name, info in model.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if default is not PydanticUndefined:
            out[info.alias or name] = json_default(default)
    return out


def effective_crd_default(node: Node) -> Any:
    """The CRD default after the API server's nested defaulting (e.g. `retry: {}` fills its children)."""
    wrapper = {"type": "object", "properties": {"x": node}}
    holder: dict[str, Any] = {}
    CRDValidator(wrapper).default(holder)
    return holder.get("x")


def compare(model_node: Node, crd_node: Node, defs: dict[str, Node], path: str, problems: list[str]) -> None:
    VISITED.append(path)
    m = resolve(model_node, defs)
    c = crd_node
    if m.get("type") != c.get("type"):
        problems.append(f"{path}: type {m.get('type')!r} in the models, {c.get('type')!r} in the CRD")
        return
    if sorted(map(str, m.get("enum", []))) != sorted(map(str, c.get("enum", []))):
        problems.append(f"{path}: enum {m.get('enum')} in the models, {c.get('enum')} in the CRD")
    for key in LIMITS:
        if m.get(key) != c.get(key):
            problems.append(f"{path}: {key} {m.get(key)!r} in the models, {c.get(key)!r} in the CRD")
    if (m.get("format") == "date-time") != (c.get("format") == "date-time"):
        problems.append(f"{path}: format {m.get('format')!r} in the models, {c.get('format')!r} in the CRD")
    if c.get("type") == "array":
        compare(m["items"], c["items"], defs, f"{path}[]", problems)
    if c.get("type") == "object":
        compare_object(m, c, defs, path, problems)


def compare_object(m: Node, c: Node, defs: dict[str, Node], path: str, problems: list[str]) -> None:
    model_props, crd_props = m.get("properties", {}), c.get("properties", {})
    for name in sorted(set(model_props) ^ set(crd_props)):
        where = "the models" if name in model_props else "the CRD"
        problems.append(f"{path}.{name}: only in {where}")
    if sorted(m.get("required", [])) != sorted(c.get("required", [])):
        problems.append(
            f"{path}: required {m.get('required', [])} in the models, {c.get('required', [])} in the CRD"
        )
    model_class = getattr(api, m["title"])
    defaults = model_defaults(model_class)
    for name in sorted(set(model_props) & set(crd_props)):
        here = f"{path}.{name}"
        crd_prop = crd_props[name]
        expected = effective_crd_default(crd_prop) if "default" in crd_prop else None
        actual = defaults.get(name)
        absent_list = crd_prop.get("type") == "array" and "default" not in crd_prop and actual == []
        if expected != actual and not absent_list:
            problems.append(f"{here}: default {actual!r} in the models, {expected!r} in the CRD")
        compare(model_props[name], crd_prop, defs, here, problems)


def disagreements(crd: Node) -> list[str]:
    problems: list[str] = []
    for part, model in (("spec", api.PublishingBuildSpec), ("status", api.PublishingBuildStatus)):
        schema, defs = model_schema(model)
        compare(schema, crd["properties"][part], defs, part, problems)
    return problems


def test_models_and_crd_agree_field_by_field() -> None:
    VISITED.clear()
    assert disagreements(crd_root()) == []
    fields = [p for p in VISITED if not p.endswith("[]") and p not in ("spec", "status")]
    assert len(fields) == len(set(fields)) == 99  # every field of the CRD (see test_crd.py)
    assert "status.conditions[].lastTransitionTime" in VISITED


@pytest.mark.parametrize(
    ("path", "change", "reported"),
    [
        (
            ["spec", "app", "profile"],
            {"maxLength": 63},
            "spec.app.profile: maxLength 64 in the models, 63 in the CRD",
        ),
        (["spec", "app", "platform"], {"enum": ["ios"]}, "spec.app.platform: enum"),
        (
            ["spec", "retry", "maxAttempts"],
            {"default": 4},
            "spec.retry.maxAttempts: default 3 in the models, 4",
        ),
        (
            ["spec", "retry", "backoff", "factor"],
            {"type": "integer"},
            "spec.retry.backoff.factor: type 'number'",
        ),
        (["spec", "submit", "ios"], {"required": ["ascAppId"]}, "spec.submit.ios: required"),
        (["status", "build", "queuePosition"], {"minimum": 1}, "status.build.queuePosition: minimum 0"),
        (
            ["status", "conditions", "items", "lastTransitionTime"],
            {"format": None},
            "lastTransitionTime: format",
        ),
        (["status", "history"], {"maxItems": 20}, "status.history: maxItems 10 in the models, 20 in the CRD"),
    ],
)
def test_a_mismatch_is_reported_with_its_path(path: list[str], change: Node, reported: str) -> None:
    broken = copy.deepcopy(crd_root())
    node = broken
    for step in path:
        node = node["items"] if step == "items" else node["properties"][step]
    for key, value in change.items():
        if value is None:
            node.pop(key)
        else:
            node[key] = value
    assert any(reported in problem for problem in disagreements(broken)), disagreements(broken)


def test_a_field_missing_on_either_side_is_reported() -> None:
    broken = copy.deepcopy(crd_root())
    del broken["properties"]["spec"]["properties"]["submit"]["properties"]["android"]["properties"]["rollout"]
    broken["properties"]["status"]["properties"]["lastPolledTime"] = {"type": "string"}
    problems = disagreements(broken)
    assert "spec.submit.android.rollout: only in the models" in problems
    assert "status.lastPolledTime: only in the CRD" in problems
