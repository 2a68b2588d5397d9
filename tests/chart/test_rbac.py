"""The chart's RBAC: exactly the rules the README lists, no wildcard, Secrets `get` only and only
in the watched namespaces, a comment on every rule, and the aggregated roles for app teams."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pytest

from tests.chart.tools import CHART, REPO_ROOT, by_kind, render
from tests.chart.values import NAMESPACED, VARIANTS

pytestmark = pytest.mark.timeout(1500)

README = (REPO_ROOT / "README.md").read_text()
SA = ("publishing-operator", "publishing-operator")  # (namespace, name) of the ServiceAccount
Rule = tuple[str, str, frozenset[str]]  # (apiGroup, resource, verbs)


def readme_rules() -> dict[str, set[Rule]]:
    """README "RBAC" table: scope -> rules. Scopes: watched (ClusterRole, or a Role per watched
    namespace), cluster, namespaced-mode (ClusterRole, only with watchNamespaces), release-namespace."""
    scope = r"(watched|cluster|namespaced-mode|release-namespace|release-ledger)"
    row = rf"^\| {scope} \| `([^`]*)` \| `([^`]+)` \| ([a-z, ]+) \| .+ \|$"
    rows = re.findall(row, README, re.MULTILINE)
    assert rows, "README has no RBAC table"
    table: dict[str, set[Rule]] = {}
    for scope, group, resource, verbs in rows:
        group = "" if group == '""' else group
        table.setdefault(scope, set()).add((group, resource, frozenset(v.strip() for v in verbs.split(","))))
    return table


def rules_of(role: dict[str, Any]) -> set[Rule]:
    out: set[Rule] = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.add((group, resource, frozenset(rule["verbs"])))
    return out


def bound_to_operator(docs: list[dict[str, Any]], kind: str) -> dict[tuple[str | None, str], set[Rule]]:
    """(namespace, role name) -> rules, for the roles bound to the operator's ServiceAccount."""
    roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in by_kind(docs, kind)}
    out = {}
    for binding in by_kind(docs, kind + "Binding"):
        subjects = {(s.get("namespace"), s["name"]) for s in binding["subjects"]}
        if SA in subjects:
            ref = (binding["metadata"].get("namespace"), binding["roleRef"]["name"])
            out[ref] = rules_of(roles[ref])
    return out


def merged(rule_sets: Iterable[set[Rule]]) -> set[Rule]:
    return set().union(*rule_sets)


def test_cluster_mode_grants_exactly_the_readme_rules() -> None:
    table = readme_rules()
    docs = render()
    assert {name for _, name in bound_to_operator(docs, "ClusterRole")} == {"publishing-operator"}
    assert merged(bound_to_operator(docs, "ClusterRole").values()) == table["watched"] | table["cluster"]
    assert bound_to_operator(docs, "Role") == {
        ("publishing-operator", "publishing-operator-leader-election"): table["release-namespace"],
        ("publishing-operator", "publishing-operator-release-ledger"): table["release-ledger"],
    }


def test_namespaced_mode_grants_exactly_the_readme_rules_per_namespace() -> None:
    table = readme_rules()
    docs = render(NAMESPACED)
    cluster = merged(bound_to_operator(docs, "ClusterRole").values())
    assert cluster == table["cluster"] | table["namespaced-mode"]
    roles = bound_to_operator(docs, "Role")
    assert roles == {
        ("mobile", "publishing-operator"): table["watched"],
        ("games", "publishing-operator"): table["watched"],
        ("publishing-operator", "publishing-operator-leader-election"): table["release-namespace"],
        ("publishing-operator", "publishing-operator-release-ledger"): table["release-ledger"],
    }


def test_namespaced_mode_keeps_secrets_out_of_cluster_roles() -> None:
    docs = render(NAMESPACED)
    for role in by_kind(docs, "ClusterRole"):
        assert all("secrets" not in rule["resources"] for rule in role["rules"]), role["metadata"]["name"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_wildcards_and_secrets_get_only(variant: str) -> None:
    for role in [d for d in render(VARIANTS[variant]) if d["kind"] in {"ClusterRole", "Role"}]:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (role["metadata"]["name"], rule)
            assert "resourceNames" not in rule or rule["resourceNames"]
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"], rule
            assert "publishingbuilds/status" not in rule["resources"] or role["metadata"]["name"] in {
                "publishing-operator"
            }, role["metadata"]["name"]


def test_every_rule_in_the_templates_says_why() -> None:
    """Tekton's convention: a comment right above every rule."""
    for template in (
        "rbac.yaml",
        "rbac-aggregated.yaml",
        "rbac-leader-election.yaml",
        "rbac-release-ledger.yaml",
    ):
        lines = (CHART / "templates" / template).read_text().splitlines()
        for number, line in enumerate(lines):
            if line.lstrip().startswith("- apiGroups:"):
                assert lines[number - 1].lstrip().startswith("#"), f"{template}:{number + 1} has no comment"


def test_aggregated_roles_let_app_teams_work_with_publishing_builds() -> None:
    docs = render()
    roles = {d["metadata"]["name"]: d for d in by_kind(docs, "ClusterRole")}
    view, edit = roles["publishing-operator-view"], roles["publishing-operator-edit"]
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    assert {k for k, v in view["metadata"]["labels"].items() if k.startswith(aggregate) and v == "true"} == {
        aggregate + "view",
        aggregate + "edit",
        aggregate + "admin",
    }
    assert {k for k, v in edit["metadata"]["labels"].items() if k.startswith(aggregate) and v == "true"} == {
        aggregate + "edit",
        aggregate + "admin",
    }
    assert rules_of(view) == {("publishing.dev", "publishingbuilds", frozenset({"get", "list", "watch"}))}
    writes = frozenset({"create", "update", "patch", "delete", "deletecollection"})
    assert rules_of(edit) == {("publishing.dev", "publishingbuilds", writes)}
    assert by_kind(render({"rbac": {"aggregateToDefaultRoles": False}}), "ClusterRole") == [
        d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "publishing-operator"
    ]


def test_rbac_create_false_renders_no_rbac() -> None:
    docs = render({"rbac": {"create": False}})
    assert not [d for d in docs if d["kind"].startswith(("Role", "ClusterRole"))]
