"""Resource types the emulated API server serves: the built-in kinds and those registered by CRDs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JsonObject = dict[str, Any]


class PrinterColumn(BaseModel):
    """One Table column: a CRD `additionalPrinterColumns` entry, or a built-in kind's computed one."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0
    json_path: str = ""
    compute: Callable[[Mapping[str, Any]], Any] | None = None


AGE = PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp")


class ResourceType(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )
    status_subresource: bool = False
    has_generation: bool = False
    custom: bool = False  # served for a CustomResourceDefinition (no strategic merge patch)
    columns: tuple[PrinterColumn, ...] = (AGE,)
    validator: Any = Field(default=None, description="admission.CRDValidator for a CRD's schema, or None")
    schema_: dict[str, Any] | None = Field(
        default=None, description="the CRD's openAPIV3Schema (for OpenAPI)"
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_plural(self) -> tuple[str, str]:
        """Storage identity: one object set per group and plural, whatever version serves it."""
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _count_data(obj: Mapping[str, Any]) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


def _ready_replicas(obj: Mapping[str, Any]) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}"


def _event_object(obj: Mapping[str, Any]) -> str:
    involved = obj.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def builtin_types() -> list[ResourceType]:
    """The built-in kinds this project and its chart touch (no events.k8s.io: see k8s-test-infra.md)."""
    core = "v1"
    return [
        ResourceType(
            group="",
            version=core,
            plural="namespaces",
            singular="namespace",
            kind="Namespace",
            namespaced=False,
            short_names=("ns",),
            status_subresource=True,
            columns=(PrinterColumn(name="Status", json_path=".status.phase"), AGE),
        ),
        ResourceType(
            group="",
            version=core,
            plural="secrets",
            singular="secret",
            kind="Secret",
            namespaced=True,
            columns=(
                PrinterColumn(name="Type", json_path=".type"),
                PrinterColumn(name="Data", type="integer", compute=_count_data),
                AGE,
            ),
        ),
        ResourceType(
            group="",
            version=core,
            plural="configmaps",
            singular="configmap",
            kind="ConfigMap",
            namespaced=True,
            short_names=("cm",),
            columns=(PrinterColumn(name="Data", type="integer", compute=_count_data), AGE),
        ),
        ResourceType(
            group="",
            version=core,
            plural="events",
            singular="event",
            kind="Event",
            namespaced=True,
            short_names=("ev",),
            columns=(
                PrinterColumn(name="Last Seen", type="date", json_path=".lastTimestamp"),
                PrinterColumn(name="Type", json_path=".type"),
                PrinterColumn(name="Reason", json_path=".reason"),
                PrinterColumn(name="Object", compute=_event_object),
                PrinterColumn(name="Message", json_path=".message"),
            ),
        ),
        ResourceType(
            group="",
            version=core,
            plural="serviceaccounts",
            singular="serviceaccount",
            kind="ServiceAccount",
            namespaced=True,
            short_names=("sa",),
        ),
        ResourceType(
            group="",
            version=core,
            plural="services",
            singular="service",
            kind="Service",
            namespaced=True,
            short_names=("svc",),
            status_subresource=True,
            columns=(
                PrinterColumn(name="Type", json_path=".spec.type"),
                PrinterColumn(name="Cluster-IP", json_path=".spec.clusterIP"),
                AGE,
            ),
        ),
        ResourceType(
            group="apps",
            version="v1",
            plural="deployments",
            singular="deployment",
            kind="Deployment",
            namespaced=True,
            short_names=("deploy",),
            categories=("all",),
            status_subresource=True,
            has_generation=True,
            columns=(PrinterColumn(name="Ready", compute=_ready_replicas), AGE),
        ),
        *[
            ResourceType(
                group="rbac.authorization.k8s.io",
                version="v1",
                plural=plural,
                singular=plural[:-1],
                kind=kind,
                namespaced=namespaced,
            )
            for plural, kind, namespaced in (
                ("roles", "Role", True),
                ("rolebindings", "RoleBinding", True),
                ("clusterroles", "ClusterRole", False),
                ("clusterrolebindings", "ClusterRoleBinding", False),
            )
        ],
        ResourceType(
            group="coordination.k8s.io",
            version="v1",
            plural="leases",
            singular="lease",
            kind="Lease",
            namespaced=True,
        ),
        ResourceType(
            group="policy",
            version="v1",
            plural="poddisruptionbudgets",
            singular="poddisruptionbudget",
            kind="PodDisruptionBudget",
            namespaced=True,
            short_names=("pdb",),
            status_subresource=True,
            has_generation=True,
        ),
        ResourceType(
            group="networking.k8s.io",
            version="v1",
            plural="networkpolicies",
            singular="networkpolicy",
            kind="NetworkPolicy",
            namespaced=True,
            short_names=("netpol",),
            has_generation=True,
        ),
        ResourceType(
            group="apiextensions.k8s.io",
            version="v1",
            plural="customresourcedefinitions",
            singular="customresourcedefinition",
            kind="CustomResourceDefinition",
            namespaced=False,
            short_names=("crd", "crds"),
            categories=("api-extensions",),
            status_subresource=True,
            has_generation=True,
            columns=(
                PrinterColumn(name="Created At", type="string", json_path=".metadata.creationTimestamp"),
            ),
        ),
    ]


def types_from_crd(
    crd: Mapping[str, Any], make_validator: Callable[[Mapping[str, Any], str], Any]
) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves, one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types: list[ResourceType] = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        columns: list[PrinterColumn] = [
            PrinterColumn(
                name=column["name"],
                type=column.get("type", "string"),
                format=column.get("format", ""),
                description=column.get("description", ""),
                priority=int(column.get("priority", 0)),
                json_path=column.get("jsonPath", ""),
            )
            for column in version.get("additionalPrinterColumns") or []
        ]
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        types.append(
            ResourceType(
                group=spec.get("group", ""),
                version=version["name"],
                plural=names.get("plural", ""),
                singular=names.get("singular") or str(names.get("kind", "")).lower(),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in subresources,
                has_generation=True,
                custom=True,
                columns=tuple(columns) or (AGE,),
                validator=make_validator(crd, version["name"]) if schema else None,
                schema_=schema,
            )
        )
    return types
