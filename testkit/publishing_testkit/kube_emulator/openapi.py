"""OpenAPI discovery: just enough for kubectl to validate on the server side.

kubectl (1.27+) validates `apply`/`create` by asking `/openapi/v3` whether the server supports the
`fieldValidation` query parameter for the object's group/version; if it does, kubectl skips its own
client-side schema download and lets the server validate (what the CRD schema and admission do
here). So the index lists every served group/version, and each group/version document declares
`fieldValidation` on the write operations of its resources.
"""

from __future__ import annotations

from publishing_testkit.kube_emulator import errors
from publishing_testkit.kube_emulator.errors import JsonObject
from publishing_testkit.kube_emulator.store import ClusterState

_FIELD_VALIDATION = {
    "name": "fieldValidation",
    "in": "query",
    "description": "Strict, Warn or Ignore: how to treat unknown or duplicate fields",
    "schema": {"type": "string", "uniqueItems": True},
}


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if group == "" else f"apis/{group}/{version}"


def openapi_document(state: ClusterState, path: str) -> JsonObject:
    path = path.rstrip("/")
    served = {(group, version) for group, version, _ in state.types}
    if path == "/openapi/v3":
        return {
            "paths": {
                _gv_path(group, version): {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}"}
                for group, version in sorted(served)
            }
        }
    for group, version in served:
        if path == f"/openapi/v3/{_gv_path(group, version)}":
            return _group_version_document(state, group, version)
    raise errors.resource_not_found()


def _group_version_document(state: ClusterState, group: str, version: str) -> JsonObject:
    paths: JsonObject = {}
    schemas: JsonObject = {}
    for (g, v, plural), rtype in state.types.items():
        if (g, v) != (group, version):
            continue
        write = {
            "parameters": [_FIELD_VALIDATION],
            "responses": {"200": {"description": "OK"}},
            # kubectl matches operations to kinds by this extension
            "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": rtype.kind},
        }
        base = f"/{_gv_path(g, v)}" + ("/namespaces/{namespace}" if rtype.namespaced else "")
        paths[f"{base}/{plural}"] = {"post": write, "get": {"responses": {"200": {"description": "OK"}}}}
        paths[f"{base}/{plural}/{{name}}"] = {"put": write, "patch": write, "delete": {"responses": {}}}
        if rtype.schema_ is not None:  # what `kubectl explain` reads for custom resources
            reversed_group = ".".join(reversed(g.split(".")))
            schemas[f"{reversed_group}.{v}.{rtype.kind}"] = {
                **rtype.schema_,
                "x-kubernetes-group-version-kind": [{"group": g, "version": v, "kind": rtype.kind}],
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (publishing-operator sandbox)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
