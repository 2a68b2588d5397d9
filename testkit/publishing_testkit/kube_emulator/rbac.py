"""RBAC: Roles, ClusterRoles and their bindings, as the API server reads them.

Two kinds of requests are authorized against the RBAC objects applied to the emulator (e.g. the
chart's ClusterRole), so a missing permission is a 403 here as on a real cluster: those with a
token the emulator issued for a ServiceAccount (`EmulatorHandle.serviceaccount_kubeconfig`; kopf
and the Python clients send tokens over plain HTTP), and impersonated ones (`kubectl
--as=system:serviceaccount:NS:NAME`; kubectl sends no bearer token over plain HTTP). Any other
request (the sandbox's admin token, no token) is a cluster admin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from publishing_testkit.kube_emulator.errors import ApiError

RBAC_GROUP = "rbac.authorization.k8s.io"


class Identity(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: str
    groups: tuple[str, ...]

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        return cls(
            user=f"system:serviceaccount:{namespace}:{name}",
            groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        )

    @classmethod
    def impersonated(cls, user: str, groups: tuple[str, ...]) -> Identity:
        """As the API server completes an impersonated identity (ServiceAccounts get their groups)."""
        if user.startswith("system:serviceaccount:") and user.count(":") == 3:
            _, _, namespace, name = user.split(":")
            base = cls.service_account(namespace, name)
            return cls(user=user, groups=tuple(dict.fromkeys(base.groups + groups)))
        return cls(user=user, groups=tuple(dict.fromkeys((*groups, "system:authenticated"))))


class Attributes(BaseModel):
    """What a request asks to do, in RBAC's terms."""

    model_config = ConfigDict(frozen=True)

    verb: str
    group: str
    resource: str
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None


def verb_of(method: str, has_name: bool, watch: bool) -> str:
    method = method.upper()
    if method == "GET":
        return "watch" if watch else ("get" if has_name else "list")
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if has_name else "deletecollection",
    }.get(method, method.lower())


def _matches(values: Iterable[str], wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def _rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = list(rule.get("resources") or [])
    resource_ok = (
        "*" in resources
        or resource in resources
        or (attrs.subresource is not None and f"*/{attrs.subresource}" in resources)
    )
    names = list(rule.get("resourceNames") or [])
    name_ok = not names or (attrs.name is not None and attrs.name in names)
    return (
        _matches(rule.get("verbs") or [], attrs.verb)
        and _matches(rule.get("apiGroups") or [], attrs.group)
        and resource_ok
        and name_ok
    )


def _subject_matches(subject: Mapping[str, Any], identity: Identity, binding_namespace: str | None) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return identity.user == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    if kind == "User":
        return identity.user == subject.get("name")
    if kind == "Group":
        return subject.get("name") in identity.groups
    return False


def allowed(
    objects: Mapping[str, Mapping[tuple[str, str], Mapping[str, Any]]], identity: Identity, attrs: Attributes
) -> bool:
    """`objects` maps roles/clusterroles/rolebindings/clusterrolebindings to their stored objects."""
    roles = objects.get("roles", {})
    cluster_roles = objects.get("clusterroles", {})

    def rules_of(ref: Mapping[str, Any], namespace: str | None) -> list[Mapping[str, Any]]:
        if ref.get("kind") == "ClusterRole":
            role = cluster_roles.get(("", str(ref.get("name"))))
        else:
            role = roles.get((namespace or "", str(ref.get("name"))))
        return list((role or {}).get("rules") or [])

    bindings: list[tuple[Mapping[str, Any], str | None]] = [
        (binding, None) for binding in objects.get("clusterrolebindings", {}).values()
    ]
    if attrs.namespace:
        bindings += [
            (binding, ns)
            for (ns, _), binding in objects.get("rolebindings", {}).items()
            if ns == attrs.namespace
        ]
    for binding, namespace in bindings:
        if not any(_subject_matches(s, identity, namespace) for s in binding.get("subjects") or []):
            continue
        if any(_rule_allows(rule, attrs) for rule in rules_of(binding.get("roleRef") or {}, namespace)):
            return True
    return False


def forbidden(identity: Identity, attrs: Attributes) -> ApiError:
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    what = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    message = (
        f'{what} is forbidden: User "{identity.user}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.group}" {scope}'
    )
    details: dict[str, Any] = {"kind": attrs.resource}
    if attrs.group:
        details["group"] = attrs.group
    if attrs.name:
        details["name"] = attrs.name
    return ApiError(403, "Forbidden", message, details)
