"""RBAC evaluation: bindings, scopes, wildcards, resourceNames, subresources, impersonated identities."""

from __future__ import annotations

from typing import Any

from publishing_testkit.kube_emulator.rbac import Attributes, Identity, allowed, forbidden, verb_of

SA = Identity.service_account("ops", "publisher")


def objects(*, cluster_rules: list[dict[str, Any]], role_rules: list[dict[str, Any]]) -> dict[str, Any]:
    subject = {"kind": "ServiceAccount", "name": "publisher"}  # namespace defaults to the binding's
    return {
        "clusterroles": {("", "reader"): {"rules": cluster_rules}},
        "clusterrolebindings": {
            ("", "reader"): {"roleRef": {"kind": "ClusterRole", "name": "reader"},
                             "subjects": [{**subject, "namespace": "ops"}]},
        },
        "roles": {("ops", "writer"): {"rules": role_rules}},
        "rolebindings": {
            ("ops", "writer"): {"roleRef": {"kind": "Role", "name": "writer"}, "subjects": [subject]},
        },
    }  # fmt: skip


READ = ["get", "list", "watch"]
RBAC = objects(
    cluster_rules=[
        {"apiGroups": ["publishing.dev"], "resources": ["publishingbuilds"], "verbs": READ},
    ],
    role_rules=[
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["expo-robot"]},
        {"apiGroups": ["publishing.dev"], "resources": ["*/status"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ],
)  # fmt: skip


def ask(
    verb: str,
    group: str,
    resource: str,
    namespace: str | None,
    name: str | None = None,
    sub: str | None = None,
) -> bool:
    attributes = Attributes(
        verb=verb, group=group, resource=resource, subresource=sub, namespace=namespace, name=name
    )
    return allowed(RBAC, SA, attributes)


def test_cluster_role_bindings_apply_everywhere_and_role_bindings_in_their_namespace() -> None:
    assert ask("list", "publishing.dev", "publishingbuilds", None)
    assert ask("watch", "publishing.dev", "publishingbuilds", "other")
    assert not ask("delete", "publishing.dev", "publishingbuilds", "ops", "b")
    assert ask("create", "", "events", "ops")
    assert not ask("create", "", "events", "other")


def test_resource_names_subresources_and_wildcards() -> None:
    assert ask("get", "", "secrets", "ops", "expo-robot")
    assert not ask("get", "", "secrets", "ops", "play-publisher")
    assert not ask("list", "", "secrets", "ops")  # resourceNames never allow a list
    assert ask("patch", "publishing.dev", "publishingbuilds", "ops", "b", sub="status")
    assert not ask("patch", "publishing.dev", "publishingbuilds", "ops", "b")


def test_identities_and_verbs() -> None:
    impersonated = Identity.impersonated("system:serviceaccount:ops:publisher", ("extra",))
    assert impersonated.user == SA.user and set(SA.groups) | {"extra"} == set(impersonated.groups)
    assert Identity.impersonated("jane", ()).groups == ("system:authenticated",)
    assert [verb_of("GET", True, False), verb_of("GET", False, False), verb_of("GET", False, True)] == [
        "get", "list", "watch",
    ]  # fmt: skip
    assert [verb_of(m, True, False) for m in ("POST", "PUT", "PATCH", "DELETE")] == [
        "create",
        "update",
        "patch",
        "delete",
    ]
    assert verb_of("DELETE", False, False) == "deletecollection"


def test_the_forbidden_status_reads_like_the_api_servers() -> None:
    attributes = Attributes(
        verb="delete", group="publishing.dev", resource="publishingbuilds", namespace="ops", name="b"
    )
    error = forbidden(SA, attributes)
    assert error.code == 403 and error.reason == "Forbidden"
    assert error.message == (
        'publishingbuilds.publishing.dev "b" is forbidden: User "system:serviceaccount:ops:publisher" '
        'cannot delete resource "publishingbuilds" in API group "publishing.dev" in the namespace "ops"'
    )
