"""Label and field selectors, parsed the way the API server parses `labelSelector`/`fieldSelector`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from publishing_testkit.kube_emulator.errors import bad_request

if TYPE_CHECKING:
    from publishing_testkit.kube_emulator.resources import ResourceType

Predicate = Callable[[Mapping[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|!=|=)\s*([A-Za-z0-9._/-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)([A-Za-z0-9._/-]+)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b=c` is two terms."""
    terms: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return [term for term in terms if term.strip()]


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # in | notin | = | != | exists | !exists
    values: frozenset[str] = frozenset()

    def check(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "in" or self.op == "=":
            return value is not None and value in self.values
        if self.op == "notin" or self.op == "!=":
            return value not in self.values
        if self.op == "exists":
            return value is not None
        return value is None


def _requirement(term: str) -> _Requirement:
    if match := _SET_RE.match(term):
        negated, key, op, values_text = match.groups()
        values = frozenset(value.strip() for value in values_text.split(",") if value.strip())
        if not negated:
            return _Requirement(key, op, values)
    elif match := _EQ_RE.match(term):
        key, op, value = match.groups()
        return _Requirement(key, "!=" if op == "!=" else "=", frozenset({value}))
    elif match := _EXISTS_RE.match(term):
        negated, key = match.groups()
        return _Requirement(key, "!exists" if negated else "exists")
    raise bad_request(f"unable to parse requirement: invalid label selector term {term.strip()!r}")


def parse_label_selector(text: str | None) -> Predicate:
    requirements = [_requirement(term) for term in _split_terms(text or "")]

    def predicate(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement.check(labels) for requirement in requirements)

    return predicate


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    """A dotted field path as the selector sees it: scalars as strings, absent as None."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, str | int | float):
        return str(current)
    return None


# What kube-apiserver lets a custom resource be selected by (without CRD selectableFields).
CUSTOM_RESOURCE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def parse_field_selector(text: str | None, supported: frozenset[str] | None = None) -> Predicate:
    """`path=value`, `path==value`, `path!=value` terms on dotted fields (metadata.name, ...);
    any field unless `supported` names the allowed ones (400 "field label not supported" else)."""
    terms: list[tuple[str, bool, str]] = []
    for term in _split_terms(text or ""):
        match = re.match(r"^\s*([A-Za-z0-9._-]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not match:
            raise bad_request(f"invalid field selector: {term.strip()!r}")
        path, op, value = match.groups()
        if supported is not None and path not in supported:
            raise bad_request(f"field label not supported: {path}")
        terms.append((path, op != "!=", value))

    def predicate(obj: Mapping[str, Any]) -> bool:
        return all(((field_value(obj, path) or "") == value) == equal for path, equal, value in terms)

    return predicate


def selectable_fields(rtype: ResourceType) -> frozenset[str] | None:
    """The field selectors a resource type takes: a custom resource's are fixed; the built-in
    kinds' are not checked here (any field)."""
    return CUSTOM_RESOURCE_FIELDS if rtype.custom else None


def parse_selectors(params: Mapping[str, str], supported_fields: frozenset[str] | None = None) -> Predicate:
    """A list's or watch's `labelSelector` and `fieldSelector` query parameters, as one predicate."""
    labels = parse_label_selector(params.get("labelSelector"))
    fields = parse_field_selector(params.get("fieldSelector"), supported_fields)
    return lambda obj: labels(obj) and fields(obj)
