"""The emulated cluster's state and write semantics, independent of HTTP.

Mirrors the API server's generic registry: metadata stamping, optimistic concurrency, the status
subresource rules, generation, finalizers and deletionTimestamp, namespace lifecycle, CRD
registration, admission through the CRD schema, and one event log ordered by a global
resourceVersion that watches replay from. Every method is synchronous and runs on the server's
event loop, so each write is atomic; stored objects are never mutated in place (each write stores a
new dict), so readers and the event log can share them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import json
import random
import re
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from publishing_testkit.kube_emulator import errors
from publishing_testkit.kube_emulator.bodies import check_patched_fields, check_typed_fields, go_quote
from publishing_testkit.kube_emulator.errors import ApiError, JsonObject
from publishing_testkit.kube_emulator.patching import (
    APPLY,
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from publishing_testkit.kube_emulator.resources import ResourceType, builtin_types, types_from_crd
from publishing_testkit.kube_emulator.selectors import Predicate

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CRD_GROUP, CRD_PLURAL = "apiextensions.k8s.io", "customresourcedefinitions"

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's generateName alphabet
_READONLY_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    group: str
    plural: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: JsonObject
    old: JsonObject | None  # the previous state, to turn selector transitions into ADDED/DELETED


ValidatorFactory = Callable[[Mapping[str, Any], str], Any]


def _default_validator_factory(crd: Mapping[str, Any], version: str) -> Any:
    """Late import: cel-python and re2 load with the first CRD, not with every emulator."""
    from publishing_testkit.kube_emulator.admission import CRDValidator

    return CRDValidator.from_crd(crd, version)


class ClusterState:
    def __init__(
        self, *, event_log_size: int = 5000, validator_factory: ValidatorFactory | None = None
    ) -> None:
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.objects: dict[tuple[str, str], dict[tuple[str, str], JsonObject]] = {}
        self.log: deque[WatchEvent] = deque(maxlen=event_log_size)
        self.rv = 0
        self.registered_at: dict[tuple[str, str], int] = {}  # (group, plural) -> rv when first served
        self._validator_factory = validator_factory or _default_validator_factory
        self._changed = asyncio.Event()
        self._compiled: dict[str, tuple[Any, list[ResourceType]]] = {}  # CRD name -> (spec, its types)
        for rtype in builtin_types():
            self._register(rtype)
        for name in INITIAL_NAMESPACES:
            self.create(self.find("", "v1", "namespaces"), None, {"metadata": {"name": name}})

    # ---- resource types ------------------------------------------------------------------------

    def _register(self, rtype: ResourceType) -> None:
        # A watch cache starts when its type is served: history before that is too old (410).
        self.registered_at.setdefault(rtype.group_plural, self.rv)
        self.types[(rtype.group, rtype.version, rtype.plural)] = rtype
        self.objects.setdefault(rtype.group_plural, {})

    def find(self, group: str, version: str, plural: str) -> ResourceType:
        rtype = self.types.get((group, version, plural))
        if rtype is None:
            raise errors.resource_not_found()
        return rtype

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions, in registration order (first one is preferred)."""
        result: dict[str, list[str]] = {}
        for group, version, _ in self.types:
            versions = result.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return result

    # ---- change notification -------------------------------------------------------------------

    async def wait_for_change(self, seconds: float) -> None:
        """Return on the next write, or after `seconds` (callers re-check the state either way)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    def wake_watchers(self) -> None:
        """Wake every waiting watch stream (on shutdown, so they see the server is closing)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _commit(self, rtype: ResourceType, kind: str, obj: JsonObject, old: JsonObject | None) -> None:
        self.log.append(WatchEvent(self.rv, rtype.group, rtype.plural, kind, obj, old))
        self.wake_watchers()

    def _write(self, rtype: ResourceType, obj: JsonObject, old: JsonObject | None) -> None:
        """Store `obj` at the next resourceVersion and log it: ADDED, or MODIFIED when it replaces `old`."""
        meta = obj["metadata"]
        meta["resourceVersion"] = self._next_rv()
        self.objects[rtype.group_plural][(meta.get("namespace") or "", meta["name"])] = obj
        self._commit(rtype, "ADDED" if old is None else "MODIFIED", obj, old)

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def events_since(self, rv: int) -> list[WatchEvent] | None:
        """Events after `rv`, or None if the log no longer reaches back that far (410 Gone)."""
        if rv >= self.rv:
            return []
        if not self.log or rv < self.log[0].rv - 1:
            return None
        start = rv - self.log[0].rv + 1
        return [self.log[i] for i in range(start, len(self.log))]

    # ---- reads ---------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> JsonObject:
        obj = self.objects[rtype.group_plural].get((namespace or "", name))
        if obj is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        return self._served(rtype, obj)

    def select(
        self, rtype: ResourceType, namespace: str | None, predicate: Predicate = lambda obj: True
    ) -> list[JsonObject]:
        items = self.objects[rtype.group_plural]
        return [
            self._served(rtype, obj)
            for (ns, _), obj in sorted(items.items())
            if (namespace is None or ns == namespace) and predicate(obj)
        ]

    @staticmethod
    def _served(rtype: ResourceType, obj: JsonObject) -> JsonObject:
        if obj.get("apiVersion") == rtype.api_version:
            return obj
        return {**obj, "apiVersion": rtype.api_version}

    # ---- writes --------------------------------------------------------------------------------

    def create(
        self,
        rtype: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        strict: bool = False,
        warnings: list[str] | None = None,
    ) -> JsonObject:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        check_typed_fields(rtype.kind, rtype.version, body)
        obj = copy.deepcopy(body)
        self._check_kind(rtype, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        namespace = self._check_namespace(rtype, namespace, meta)
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rtype.kind,
                    rtype.group,
                    "",
                    [
                        (
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        ),
                    ],
                )
            meta["name"] = self._generate_name(rtype, namespace, prefix)
        name = meta["name"]
        self._check_name(rtype, name)
        if (namespace or "", name) in self.objects[rtype.group_plural]:
            raise errors.already_exists(rtype.plural, rtype.group, name)
        for field in (*_READONLY_META, "managedFields", "selfLink"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rtype.has_generation:
            meta["generation"] = 1
        if rtype.status_subresource and rtype.custom:
            obj.pop("status", None)  # the main resource does not write status
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        obj = self._prepare_builtin_create(rtype, obj)
        obj = self._admit(rtype, obj, None, None, strict, warnings)
        _drop_empty_metadata(obj)
        if dry_run:
            return obj
        self._write(rtype, obj, None)
        if (rtype.group, rtype.plural) == (CRD_GROUP, CRD_PLURAL):
            self._crd_changed(obj)
        return obj

    def replace(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
        warnings: list[str] | None = None,
    ) -> JsonObject:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        check_typed_fields(rtype.kind, rtype.version, body)
        old = self._stored(rtype, namespace, name)
        new = copy.deepcopy(body)
        self._check_kind(rtype, new)
        meta = new.setdefault("metadata", {})
        if not meta.get("resourceVersion") and rtype.custom:
            raise errors.invalid(
                rtype.plural,  # kube-apiserver names the resource here, not the kind
                rtype.group,
                name,
                [
                    (
                        "FieldValueInvalid",
                        "metadata.resourceVersion",
                        "Invalid value: 0: must be specified for an update",
                    )
                ],
            )
        return self._update(rtype, old, new, subresource, dry_run, strict, warnings)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
        warnings: list[str] | None = None,
    ) -> JsonObject:
        if content_type == APPLY and (namespace or "", name) not in self.objects[rtype.group_plural]:
            # Server-side apply of an absent object creates it (no field ownership is tracked).
            body = copy.deepcopy(patch) if isinstance(patch, dict) else patch
            if isinstance(body, dict):
                body.setdefault("metadata", {})["name"] = name
            return self.create(rtype, namespace, body, dry_run=dry_run, strict=strict, warnings=warnings)
        old = self._stored(rtype, namespace, name)
        if content_type in (MERGE, APPLY):
            if not isinstance(patch, dict):
                raise errors.bad_request("a merge patch must be a JSON object")
            new = merge_patch(old, patch)
        elif content_type == JSON_PATCH:
            new = json_patch(old, patch)
        elif content_type == STRATEGIC:
            if rtype.custom:
                raise errors.unsupported_media_type([JSON_PATCH, MERGE, APPLY])
            if not isinstance(patch, dict):
                raise errors.bad_request("a strategic merge patch must be a JSON object")
            new = strategic_merge_patch(old, patch)
        else:
            raise errors.unsupported_media_type([JSON_PATCH, MERGE, APPLY, STRATEGIC])
        if not isinstance(new, dict):
            raise errors.unprocessable("the patched object is not a JSON object")
        check_patched_fields(rtype.kind, rtype.version, new)
        return self._update(rtype, old, new, subresource, dry_run, strict, warnings)

    def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> JsonObject:
        old = self._stored(rtype, namespace, name)
        preconditions = (options or {}).get("preconditions") or {}
        meta = old["metadata"]
        # apiserver registry/rest/delete.go: the conflict names the kind, not the resource.
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise errors.conflict(
                rtype.kind,
                rtype.group,
                name,
                f"the UID in the precondition ({preconditions['uid']}) does not match the UID in record "
                f"({meta.get('uid')}). The object might have been deleted and then recreated",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta.get(
            "resourceVersion"
        ):
            raise errors.conflict(
                rtype.kind,
                rtype.group,
                name,
                f"the ResourceVersion in the precondition ({preconditions['resourceVersion']}) does not "
                f"match the ResourceVersion in record ({meta.get('resourceVersion')}). "
                "The object might have been modified",
            )
        is_namespace = (rtype.group, rtype.plural) == ("", "namespaces")
        if dry_run:
            return old
        if meta.get("finalizers") or is_namespace:
            if meta.get("deletionTimestamp"):
                return old  # already being deleted
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if rtype.has_generation:
                new["metadata"]["generation"] = int(meta.get("generation", 0)) + 1
            if is_namespace:
                new.setdefault("status", {})["phase"] = "Terminating"
            self._write(rtype, new, old)
            if is_namespace:
                self._empty_namespace(name)
                return (
                    self._stored(rtype, None, name) if ("", name) in self.objects[("", "namespaces")] else new
                )
            return new
        return self._remove(rtype, old)

    # ---- internals -----------------------------------------------------------------------------

    def _stored(self, rtype: ResourceType, namespace: str | None, name: str) -> JsonObject:
        obj = self.objects[rtype.group_plural].get((namespace or "", name))
        if obj is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        return obj

    def _remove(self, rtype: ResourceType, obj: JsonObject) -> JsonObject:
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        del self.objects[rtype.group_plural][key]
        final = {**obj, "metadata": {**meta, "resourceVersion": self._next_rv()}}
        self._commit(rtype, "DELETED", final, obj)
        if (rtype.group, rtype.plural) == (CRD_GROUP, CRD_PLURAL):
            self._crd_removed(obj)
        if rtype.namespaced:
            self._maybe_finish_namespace(key[0])
        return final

    def _update(
        self,
        rtype: ResourceType,
        old: JsonObject,
        new: JsonObject,
        subresource: str | None,
        dry_run: bool,
        strict: bool = False,
        warnings: list[str] | None = None,
    ) -> JsonObject:
        name = old["metadata"]["name"]
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        old_meta = old["metadata"]
        if meta.get("namespace", old_meta.get("namespace")) != old_meta.get("namespace"):
            raise errors.bad_request(
                "the namespace of the object does not match the namespace on the request"
            )
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta.get("resourceVersion"):
            raise errors.conflict(rtype.plural, rtype.group, name, errors.STALE)
        if subresource not in (None, "status"):
            raise errors.resource_not_found()
        if subresource == "status":
            # The status endpoint writes status only: everything else comes from the stored object.
            prepared = copy.deepcopy(old)
            if "status" in new:
                prepared["status"] = new["status"]
            else:
                prepared.pop("status", None)
            new = prepared
        else:
            if rtype.status_subresource:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            for field in (*_READONLY_META, "managedFields", "selfLink"):
                if field in old_meta:
                    meta[field] = copy.deepcopy(old_meta[field])
                else:
                    meta.pop(field, None)
            meta["name"] = name
            if old_meta.get("namespace"):
                meta["namespace"] = old_meta["namespace"]
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    go_list = "[]string{" + ", ".join(json.dumps(f) for f in sorted(added)) + "}"  # Go's %#v
                    cause = (
                        "FieldValueForbidden",
                        "metadata.finalizers",
                        "Forbidden: no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers {go_list}",
                    )
                    # Twice, as kube-apiserver lists it: the object-meta update check runs in the generic
                    # registry and again in the resource's own update validation (the message dedups).
                    raise errors.invalid(rtype.kind, rtype.group, name, [cause, cause])
        new["apiVersion"], new["kind"] = old.get("apiVersion", rtype.api_version), rtype.kind
        new["metadata"]["resourceVersion"] = old_meta.get("resourceVersion")
        new = self._prepare_builtin_update(rtype, new)
        new = self._admit(rtype, new, old, subresource, strict, warnings)
        _drop_empty_metadata(new)
        # After defaulting, as kube-apiserver decides it: a PUT that only leaves out defaulted
        # fields changes nothing and keeps the generation.
        if subresource is None and rtype.has_generation and _without_metadata(new) != _without_metadata(old):
            new["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if new == old:
            return old  # a no-op write keeps the resourceVersion and emits no event, as etcd does
        if dry_run:
            return new
        meta = new["metadata"]
        is_namespace = (rtype.group, rtype.plural) == ("", "namespaces")
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not is_namespace:
            stored = {**new, "metadata": {**meta}}
            self.objects[rtype.group_plural][(meta.get("namespace") or "", name)] = stored
            return self._remove(rtype, stored)
        self._write(rtype, new, old)
        if (rtype.group, rtype.plural) == (CRD_GROUP, CRD_PLURAL):
            self._crd_changed(new)
        return new

    def _admit(
        self,
        rtype: ResourceType,
        new: JsonObject,
        old: JsonObject | None,
        subresource: str | None,
        strict: bool = False,
        warnings: list[str] | None = None,
    ) -> JsonObject:
        if rtype.validator is None:
            return new
        # Unknown fields first, as kube-apiserver's decoder finds them before any validation: with
        # fieldValidation=Strict a typo is the error, not the "Required value" it leaves behind.
        prune = getattr(rtype.validator, "prune", None)
        if (strict or warnings is not None) and prune is not None:  # said even when validation fails
            _unknown_fields(rtype, pruned_fields(new, prune(copy.deepcopy(new))), strict, warnings)
        try:
            admitted = rtype.validator.admit(new, old, subresource=subresource)
        except Exception as exc:
            to_status = getattr(exc, "to_status", None)
            if to_status is None:
                raise
            name = new.get("metadata", {}).get("name", "")
            status = to_status(rtype.kind, name, rtype.group)
            error = ApiError(
                int(status.get("code", 422)),
                str(status.get("reason", "Invalid")),
                str(status.get("message", "")),
                status.get("details"),
                body=status,
            )
            error.warnings = list(warnings or [])
            raise error from None
        if prune is None and (strict or warnings is not None):  # a validator that only admits
            _unknown_fields(rtype, pruned_fields(new, admitted), strict, warnings)
        return dict(admitted)

    def _check_kind(self, rtype: ResourceType, obj: JsonObject) -> None:
        kind = obj.get("kind")
        if kind and kind != rtype.kind:
            raise errors.bad_request(f"the kind {kind!r} does not match the resource {rtype.qualified!r}")
        api_version = obj.get("apiVersion")
        if api_version and api_version.split("/")[0] != (rtype.group or rtype.version) and rtype.group:
            raise errors.bad_request(
                f"the API version {api_version!r} does not match the resource {rtype.qualified!r}"
            )

    def _check_namespace(self, rtype: ResourceType, namespace: str | None, meta: JsonObject) -> str | None:
        if not rtype.namespaced:
            meta.pop("namespace", None)
            return None
        body_ns = meta.get("namespace")
        if namespace is None:
            namespace = body_ns
        if not namespace:
            raise errors.bad_request(
                "the server could not find the requested resource: a namespace is required"
            )
        if body_ns and body_ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
        ns_obj = self.objects[("", "namespaces")].get(("", namespace))
        if ns_obj is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rtype.plural,
                rtype.group,
                str(meta.get("name", "")),
                f'{rtype.qualified} "{meta.get("name", "")}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
            )
        return namespace

    def _check_name(self, rtype: ResourceType, name: Any) -> None:
        pattern = _DNS_LABEL if rtype.plural == "namespaces" else _DNS_SUBDOMAIN
        if isinstance(name, str) and len(name) <= 253 and pattern.match(name):
            return
        raise errors.invalid(
            rtype.kind,
            rtype.group,
            str(name),
            [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower case "
                    "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                    "character",
                ),
            ],
        )

    def _generate_name(self, rtype: ResourceType, namespace: str | None, prefix: str) -> str:
        for _ in range(100):
            name = prefix[:58] + "".join(random.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))
            if (namespace or "", name) not in self.objects[rtype.group_plural]:
                return name
        raise errors.ApiError(500, "AlreadyExists", "could not generate a unique name")

    def _prepare_builtin_create(self, rtype: ResourceType, obj: JsonObject) -> JsonObject:
        if (rtype.group, rtype.plural) == ("", "namespaces"):
            obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif (rtype.group, rtype.plural) == ("", "secrets"):
            obj.setdefault("type", "Opaque")
        return self._prepare_builtin_update(rtype, obj)

    def _prepare_builtin_update(self, rtype: ResourceType, obj: JsonObject) -> JsonObject:
        if (rtype.group, rtype.plural) == ("", "secrets") and obj.get("stringData"):
            # stringData is write-only: folded into data, base64-encoded, as the API server does.
            data = dict(obj.get("data") or {})
            for key, value in obj.pop("stringData").items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        elif (rtype.group, rtype.plural) == (CRD_GROUP, CRD_PLURAL):
            self._check_crd(obj)
            self._compiled[obj["metadata"]["name"]] = (obj.get("spec"), self._crd_types(obj))
            names = (obj.get("spec") or {}).get("names") or {}
            obj["status"] = {
                "acceptedNames": names,
                "conditions": [
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "reason": "NoConflicts",
                        "message": "no conflicts found",
                        "lastTransitionTime": now_rfc3339(),
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "reason": "InitialNamesAccepted",
                        "message": "the initial names have been accepted",
                        "lastTransitionTime": now_rfc3339(),
                    },
                ],
                "storedVersions": [
                    v["name"] for v in (obj.get("spec") or {}).get("versions") or [] if v.get("storage")
                ],
            }
            old = self.objects[rtype.group_plural].get(("", obj["metadata"]["name"]))
            if old is not None and _without_times(old.get("status")) == _without_times(obj["status"]):
                obj["status"] = old["status"]  # keep it a no-op when nothing changed
        return obj

    # ---- CRDs --------------------------------------------------------------------------------

    def _check_crd(self, crd: JsonObject) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        name = crd.get("metadata", {}).get("name", "")
        causes: list[tuple[str, str, str]] = []
        if not spec.get("group"):
            causes.append(("FieldValueRequired", "spec.group", "Required value"))
        if not names.get("plural") or not names.get("kind"):
            causes.append(("FieldValueRequired", "spec.names", "Required value: plural and kind"))
        elif name != f"{names['plural']}.{spec.get('group')}":
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: {name!r}: must be spec.names.plural+"."+spec.group',
                )
            )
        versions = spec.get("versions") or []
        if not versions:
            causes.append(("FieldValueRequired", "spec.versions", "Required value"))
        elif sum(1 for v in versions if v.get("storage")) != 1:
            causes.append(
                ("FieldValueInvalid", "spec.versions", "must have exactly one version marked as storage")
            )
        if causes:
            raise errors.invalid("CustomResourceDefinition", CRD_GROUP, name, causes)

    def _crd_types(self, crd: JsonObject) -> list[ResourceType]:
        """The CRD's served types with their validators; a schema that does not compile is 422."""
        try:
            return types_from_crd(crd, self._validator_factory)
        except Exception as exc:  # the validator refuses the schema (e.g. a CEL rule that does not compile)
            name = crd.get("metadata", {}).get("name", "")
            cause = ("FieldValueInvalid", "spec.versions[].schema.openAPIV3Schema", f"Invalid value: {exc}")
            raise errors.invalid("CustomResourceDefinition", CRD_GROUP, name, [cause]) from None

    def _registered(self, crd: JsonObject) -> list[ResourceType]:
        """The types registered for a CRD's group and plural, one per version it served."""
        spec = crd.get("spec") or {}
        group_plural = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        return [rtype for rtype in self.types.values() if rtype.custom and rtype.group_plural == group_plural]

    def _unregister(self, rtype: ResourceType) -> None:
        del self.types[(rtype.group, rtype.version, rtype.plural)]

    def _crd_changed(self, crd: JsonObject) -> None:
        name = crd["metadata"]["name"]
        compiled = self._compiled.pop(name, None)
        # Reuse the validators compiled while admitting this very write (not a dry run's or a refused one's).
        served = (
            compiled[1] if compiled is not None and compiled[0] is crd.get("spec") else self._crd_types(crd)
        )
        for rtype in self._registered(crd):
            self._unregister(rtype)
        for rtype in served:
            self._register(rtype)

    def _crd_removed(self, crd: JsonObject) -> None:
        rtypes = self._registered(crd)
        if not rtypes:
            return
        group_plural = rtypes[0].group_plural
        for obj in list(self.objects.get(group_plural, {}).values()):
            self._remove(rtypes[0], obj)
        for rtype in rtypes:
            self._unregister(rtype)
        self.objects.pop(group_plural, None)
        self.registered_at.pop(group_plural, None)

    # ---- namespaces ----------------------------------------------------------------------------

    def _empty_namespace(self, namespace: str) -> None:
        """The namespace controller's job: delete everything inside, then the namespace itself."""
        seen: set[tuple[str, str]] = set()
        for rtype in list(self.types.values()):
            if not rtype.namespaced or rtype.group_plural in seen:
                continue
            seen.add(rtype.group_plural)
            for (ns, name), _ in list(self.objects[rtype.group_plural].items()):
                if ns == namespace and (ns, name) in self.objects[rtype.group_plural]:
                    self.delete(rtype, ns, name)
        self._maybe_finish_namespace(namespace)

    def _maybe_finish_namespace(self, namespace: str) -> None:
        ns_type = self.types[("", "v1", "namespaces")]
        ns_obj = self.objects[("", "namespaces")].get(("", namespace))
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        for (group, plural), items in self.objects.items():
            if (group, plural) != ("", "namespaces") and any(ns == namespace for ns, _ in items):
                return
        self._remove(ns_type, ns_obj)


_OMITTED_WHEN_EMPTY = ("labels", "annotations", "finalizers", "ownerReferences", "generateName")


def _drop_empty_metadata(obj: JsonObject) -> None:
    """ObjectMeta's omitempty fields: kube-apiserver stores `labels: {}` or `finalizers: []` as absent."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in _OMITTED_WHEN_EMPTY:
            if key in meta and not meta[key]:
                del meta[key]


def _without_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "apiVersion", "kind")}


def _without_times(status: Any) -> Any:
    if not isinstance(status, dict):
        return status
    conditions = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []
    ]
    return {**status, "conditions": conditions}


def pruned_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Field paths present in `before` and absent from `after` (what pruning removed)."""
    found: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            path = f"{prefix}.{key}" if prefix else key
            if key not in after:
                found.append(path)
            else:
                found.extend(pruned_fields(value, after[key], path))
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (item_before, item_after) in enumerate(zip(before, after, strict=True)):
            found.extend(pruned_fields(item_before, item_after, f"{prefix}[{index}]"))
    return found


def _unknown_fields(
    rtype: ResourceType, unknown: list[str], strict: bool, warnings: list[str] | None
) -> None:
    """fieldValidation=Strict refuses unknown fields; Warn (the default) names them in Warning headers."""
    texts = [f"unknown field {go_quote(field)}" for field in unknown]
    if texts and strict:
        raise errors.bad_request(
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {', '.join(texts)}"
        )
    if warnings is not None:
        warnings.extend(texts)
