"""A Kubernetes API server emulator: kmock's `KubernetesEmulator`, made faithful where kmock 0.8 is not.

kmock parses the HTTP requests and keeps its DSL and request log; this subclass answers every
Kubernetes API path itself from a `ClusterState` (see store.py and research/k8s-test-infra.md for
the gaps of plain kmock it closes): discovery as the API server shapes it, CRUD, the three patch
formats, list and watch with resourceVersion semantics, selectors, Table output, OpenAPI v3
discovery, and Status error bodies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import math
import time
import traceback
from collections.abc import Mapping
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import rendering
from multidict import CIMultiDict

from publishing_testkit.kube_emulator import bodies, errors, protobuf, rbac, table
from publishing_testkit.kube_emulator.errors import ApiError, JsonObject
from publishing_testkit.kube_emulator.faults import ApiFault, FaultPlan, RequestRecord
from publishing_testkit.kube_emulator.patching import APPLY, JSON_PATCH, MERGE, STRATEGIC
from publishing_testkit.kube_emulator.resources import ResourceType
from publishing_testkit.kube_emulator.selectors import parse_selectors, selectable_fields
from publishing_testkit.kube_emulator.store import ClusterState
from publishing_testkit.kube_emulator.watch import serve_expired, serve_watch

PROTOBUF = "application/vnd.kubernetes.protobuf"
ADMIN_PREFIX = "/__emulator"  # injected faults and the request journal (faults.py); not a Kubernetes path
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-publishing-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@attrs.frozen
class ApiPath:
    """A parsed `/api/v1/...` or `/apis/group/version/...` path."""

    group: str
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_api_path(path: str, state: ClusterState) -> ApiPath | None:
    parts = [part for part in path.split("/") if part]
    if not parts or parts[0] not in ("api", "apis"):
        return None
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        if len(parts) < 2:
            return None
        group, rest = parts[1], parts[2:]
    if not rest:
        return ApiPath(group=group)
    version, rest = rest[0], rest[1:]
    namespace: str | None = None
    # /namespaces/NS/plural... unless it is a namespace's own subresource (status, finalize).
    own_subresource = group == "" and len(rest) == 3 and (group, version, rest[2]) not in state.types
    if len(rest) >= 3 and rest[0] == "namespaces" and not own_subresource:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return ApiPath(group=group, version=version)
    return ApiPath(
        group=group,
        version=version,
        plural=rest[0],
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else None,
        subresource="/".join(rest[2:]) or None,
    )


@attrs.define(kw_only=True)
class SandboxKubernetesEmulator(kmock.KubernetesEmulator):
    """The emulated API server; serve it with `serve_emulator()` (server.py)."""

    state: ClusterState = attrs.field(factory=ClusterState)
    bookmark_interval: float = 10.0
    request_history: int = 200  # kmock keeps every request for assertions: bound it for long runs
    address: str = "127.0.0.1:0"  # advertised in /api's serverAddressByClientCIDRs
    closing: asyncio.Event = attrs.field(factory=asyncio.Event)
    tokens: dict[str, rbac.Identity] = attrs.field(factory=dict)  # ServiceAccount tokens: RBAC applies
    # kube-apiserver --anonymous-auth=false: with `anonymous` off, a request needs a bearer token the
    # emulator knows (an admin token or a ServiceAccount's) or impersonation, else 401 Unauthorized.
    anonymous: bool = True
    admin_tokens: set[str] = attrs.field(factory=lambda: {"sandbox-token"})
    faults: FaultPlan = attrs.field(factory=FaultPlan)  # injected faults and the request journal

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's entry point, with the request parsed by `parse_api_path` (kmock 0.8's parser
        fails on `/api/v1/namespaces` and on namespace subresources)."""
        request = await self._parse(raw_request)
        self._requests.append(request)
        return await self._handle(request)

    async def _parse(self, raw: aiohttp.web.BaseRequest) -> rendering.Request:
        body = await raw.read()
        data: Any = None
        if body and not raw.headers.get("Content-Type", "").startswith(PROTOBUF):
            try:
                data = bodies.decode_json(body)
            except ApiError:
                data = None  # answered with the 400 when the body is read for real
        api = parse_api_path(raw.path, self.state)
        resource = None
        if api is not None and api.version is not None:
            resource = kmock.resource(group=api.group, version=api.version, plural=api.plural)
        return rendering.Request(
            id=len(self._requests),
            raw_request=raw,
            url=raw.url,
            method=raw.method,
            params=dict(raw.query),
            headers=dict(raw.headers),
            cookies=dict(raw.cookies),
            body=body,
            text=body.decode("utf-8", "replace"),
            data=data,
            action=_action(raw.method, api, _is_watch(raw.query)),
            resource=resource,
            namespace=api.namespace if api else None,
            name=api.name if api else None,
            subresource=api.subresource if api else None,
        )

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if len(self._requests) > self.request_history:
            del self._requests[: -self.request_history]
        raw = request._raw_request
        assert raw is not None
        if raw.path.startswith(ADMIN_PREFIX):
            return await self._admin(raw)
        if not self._authenticated(request):
            return _json(errors.unauthorized().to_status(), 401)
        try:
            faulty = await self._injected_fault(request)
            if faulty is not None:
                return faulty
            injected = await self._user_reaction(request)
            return injected if injected is not None else await self._route(request)
        except ApiError as exc:
            if exc.text is not None:
                return aiohttp.web.Response(status=exc.code, text=exc.text, content_type="text/plain")
            return _json(exc.to_status(), exc.code, exc.warnings)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug in the emulator: answer like an API server would, with detail
            status = errors.ApiError(
                500,
                "InternalError",
                f"{type(exc).__name__}: {exc}",
                {"causes": [{"message": traceback.format_exc()}]},
            )
            return _json(status.to_status(), 500)

    # ---- injected faults (faults.py) ----------------------------------------------------------

    def add_fault(self, fault: ApiFault) -> None:
        """Inject a fault; watches are woken so a cut takes effect at once."""
        self.faults.add(fault)
        self.state.wake_watchers()

    async def _injected_fault(self, request: rendering.Request) -> aiohttp.web.StreamResponse | None:
        """Record the request in the journal; answer with an injected fault, or None to go on."""
        raw = request._raw_request
        assert raw is not None
        api = parse_api_path(raw.path, self.state)
        watch = _is_watch(request.params)
        name = api.name if api else None
        verb = rbac.verb_of(raw.method, name is not None, watch)
        resource = api.plural if api else None
        namespace = api.namespace if api else None
        subresource = api.subresource if api else None
        record = functools.partial(
            RequestRecord,
            time=time.time(),
            method=raw.method,
            path=raw.path,
            query=raw.query_string,
            verb=verb,
            resource=resource,
            namespace=namespace,
            name=name,
            subresource=subresource,
            agent=raw.headers.get("User-Agent", ""),
        )
        plan = self.faults
        if plan.in_outage:
            plan.journal.append(record(fault="outage"))
            return _drop(raw)
        resumed_watch = watch and request.params.get("resourceVersion") not in (None, "", "0")
        kinds = ("error", "drop", "latency", "gone") if resumed_watch else ("error", "drop", "latency")
        agent = raw.headers.get("User-Agent", "")
        fault = plan.take(kinds, verb, resource, subresource, namespace, agent, request.text)
        plan.journal.append(record(fault=fault.kind if fault else None))
        if fault is None:
            return None
        if fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind == "error":
            return _json(_fault_status(fault), fault.code, headers=_retry_after(fault))
        if fault.kind == "gone":
            return await serve_expired(raw, "too old resource version (an injected fault)")
        if fault.when == "before":
            return _drop(raw)
        with contextlib.suppress(ApiError):
            await self._route(request)  # drop after: the write is applied, the answer is lost
        return _drop(raw)

    async def _admin(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """`/__emulator/faults` (GET: pending and injected; POST: add) and `/__emulator/requests`."""
        if raw.path == f"{ADMIN_PREFIX}/faults" and raw.method == "POST":
            try:
                payload = json.loads(await raw.read())
                listed = payload if isinstance(payload, list) else [payload]
                faults = [ApiFault.model_validate(item) for item in listed]
            except (ValueError, TypeError) as exc:
                return _json(errors.bad_request(f"invalid faults: {exc}").to_status(), 400)
            for fault in faults:
                self.add_fault(fault)
            return _json(self.faults.describe())
        if raw.path == f"{ADMIN_PREFIX}/faults":
            return _json(self.faults.describe())
        if raw.path == f"{ADMIN_PREFIX}/requests":
            return _json([record.to_json() for record in self.faults.journal])
        return _json(errors.resource_not_found().to_status(), 404)

    async def _user_reaction(self, request: rendering.Request) -> aiohttp.web.StreamResponse | None:
        """Reactions a test declared with kmock's DSL come first (fault injection), e.g.
        `emulator[kmock.action.UPDATE, kmock.resource("example.dev/v1/widgets")][:1] << 500`.
        kmock's own fallbacks (priority -inf) are never used: this class answers instead."""
        declared = [payload for payload in self._payloads if payload.priorities[:1] != (-math.inf,)]
        if not declared:
            return None
        depth = max(len(payload.priorities) for payload in declared)
        declared.sort(key=lambda p: tuple(-x for x in p.priorities) + (0,) * (depth - len(p.priorities)))
        for payload in declared:
            if request in payload._source and not payload._disabled.is_set():
                try:
                    response: aiohttp.web.StreamResponse = await payload(request)
                except (rendering.ReactionMismatchError, NotImplementedError):
                    continue  # a catcher (`>> sink`) that only records, or a depleted payload
                return response
        return None

    # ---- routing -------------------------------------------------------------------------------

    async def _route(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        path = raw.path
        method = raw.method.upper()
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        if path == "/version":
            return _json(SERVER_VERSION)
        if path == "/":
            return _json({"paths": sorted(self._root_paths())})
        if path.startswith("/openapi/"):
            return _json(self._openapi(path))
        if path.rstrip("/") == "/apis":
            return _json(self._groups())
        api = parse_api_path(path, self.state)
        if api is None:
            raise errors.resource_not_found()
        if method != "GET" and api.plural is None:
            raise errors.method_not_allowed()
        if api.version is None:
            return _json(self._api_versions() if api.group == "" else self._group(api.group))
        if api.plural is None:
            return _json(self._resource_list(api.group, api.version))
        if api.group and (api.group, api.version, api.plural) not in self.state.types:
            raise errors.page_not_found()
        rtype = self.state.find(api.group, api.version, api.plural)
        if api.namespace is not None and not rtype.namespaced:
            raise errors.resource_not_found()
        params = request.params
        watch = _is_watch(params)
        self._authorize(request, rtype, api, method, watch)
        dry_run = params.get("dryRun") == "All"
        strict = params.get("fieldValidation") == "Strict"
        # No fieldValidation means Warn on kube-apiserver: unknown fields are dropped and named in
        # Warning headers (the operator's clients send none; kubectl sends Strict).
        warnings: list[str] | None = [] if params.get("fieldValidation", "Warn") == "Warn" else None
        accept = request.headers.get("Accept", "")
        if api.name is None:
            if method == "GET" and watch:
                return await self._watch(request, rtype, api)
            if method == "GET":
                return self._list(rtype, api, params, accept)
            if method == "POST":
                body = self._body(request)
                return _json(
                    self._output(
                        rtype,
                        self.state.create(
                            rtype, api.namespace, body, dry_run=dry_run, strict=strict, warnings=warnings
                        ),
                        accept,
                    ),
                    201,
                    warnings,
                )
            if method == "DELETE":
                return self._delete_collection(rtype, api, params)
            raise errors.method_not_allowed()
        name = api.name
        if api.subresource not in (None, "status"):
            if not (rtype.plural == "namespaces" and api.subresource == "finalize" and method == "PUT"):
                if rtype.custom:  # kube-apiserver's CRD handler: "<plural>.<group> "<name>" not found"
                    raise errors.not_found(rtype.plural, rtype.group, name)
                raise errors.resource_not_found()
            api = attrs.evolve(api, subresource=None)
        if api.subresource == "status" and not rtype.status_subresource:
            raise errors.resource_not_found()
        if method == "GET":
            if watch:
                return await self._watch(request, rtype, api)
            return _json(self._output(rtype, self.state.get(rtype, api.namespace, name), accept))
        if method == "PUT":
            body = self._body(request)
            result = self.state.replace(
                rtype,
                api.namespace,
                name,
                body,
                subresource=api.subresource,
                dry_run=dry_run,
                strict=strict,
                warnings=warnings,
            )
            return _json(self._output(rtype, result, accept), 200, warnings)
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            patch = self._patch_body(request, content_type)
            if content_type == APPLY and not params.get("fieldManager"):
                raise errors.bad_request(
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch"
                )
            result = self.state.patch(
                rtype,
                api.namespace,
                name,
                content_type,
                patch,
                subresource=api.subresource,
                dry_run=dry_run,
                strict=strict,
                warnings=warnings,
            )
            return _json(self._output(rtype, result, accept), 200, warnings)
        if method == "DELETE":
            options = request.data if isinstance(request.data, dict) else {}
            dry_run = dry_run or "All" in (options.get("dryRun") or [])
            deleted = self.state.delete(rtype, api.namespace, name, options, dry_run=dry_run)
            still_there = (api.namespace or "", name) in self.state.objects[rtype.group_plural]
            if still_there or rtype.plural == "namespaces":  # marked for deletion: the object
                return _json(self._output(rtype, deleted, accept))
            return _json(errors.deleted(rtype.plural, rtype.group, name, deleted["metadata"].get("uid", "")))
        raise errors.method_not_allowed()

    def _authenticated(self, request: rendering.Request) -> bool:
        if self.anonymous:
            return True
        raw = request._raw_request
        assert raw is not None
        token = raw.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return token in self.admin_tokens or token in self.tokens or "Impersonate-User" in raw.headers

    def _identity(self, request: rendering.Request) -> rbac.Identity | None:
        """A ServiceAccount token the emulator issued, or impersonation (`kubectl --as=...`, which
        works over plain HTTP where kubectl sends no bearer token); None for a cluster admin."""
        raw = request._raw_request
        assert raw is not None
        user = raw.headers.get("Impersonate-User")
        if user:
            groups = tuple(raw.headers.getall("Impersonate-Group", []))
            return rbac.Identity.impersonated(user, groups)
        token = raw.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return self.tokens.get(token)

    def _authorize(
        self, request: rendering.Request, rtype: ResourceType, api: ApiPath, method: str, watch: bool
    ) -> None:
        identity = self._identity(request)
        if identity is None:
            return  # the admin token, or none: a cluster admin (see rbac.py)
        attributes = rbac.Attributes(
            verb=rbac.verb_of(method, api.name is not None, watch),
            group=rtype.group,
            resource=rtype.plural,
            subresource=api.subresource,
            namespace=api.namespace,
            name=api.name,
        )
        objects = {
            plural: self.state.objects.get((rbac.RBAC_GROUP, plural), {})
            for plural in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
        }
        if not rbac.allowed(objects, identity, attributes):
            raise rbac.forbidden(identity, attributes)

    # ---- bodies --------------------------------------------------------------------------------

    def _body(self, request: rendering.Request) -> Any:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if content_type == PROTOBUF:
            # kubectl's imperative `create` of a few core kinds; everything else is 415 as documented.
            try:
                decoded = protobuf.decode(request.body)
            except protobuf.ProtobufError as exc:
                raise errors.bad_request(f"invalid protobuf body: {exc}") from None
            if decoded is None:
                raise errors.unsupported_media_type(["application/json", "application/yaml"])
            return decoded
        if content_type in ("application/yaml", "application/x-yaml"):
            return bodies.decode_yaml(request.text)
        return bodies.decode_json(request.body)

    def _patch_body(self, request: rendering.Request, content_type: str) -> Any:
        accepted = [JSON_PATCH, MERGE, APPLY, STRATEGIC]
        if content_type not in accepted:
            raise errors.unsupported_media_type(accepted)
        if content_type == APPLY:
            return bodies.decode_yaml(request.text)
        return bodies.decode_json(request.body)

    # ---- output --------------------------------------------------------------------------------

    def _output(self, rtype: ResourceType, obj: JsonObject, accept: str) -> JsonObject:
        if table.wants_table(accept):
            return table.table(rtype, [obj], str(obj.get("metadata", {}).get("resourceVersion", "")))
        if table.wants_as(accept, "PartialObjectMetadata"):
            return table.partial_object_metadata(obj)
        return obj

    def _list(
        self, rtype: ResourceType, api: ApiPath, params: Mapping[str, str], accept: str
    ) -> aiohttp.web.StreamResponse:
        items = self.state.select(rtype, api.namespace, parse_selectors(params, selectable_fields(rtype)))
        items, list_meta = _page(items, params, self.state.rv)
        if table.wants_table(accept):
            result = table.table(
                rtype, items, list_meta["resourceVersion"], params.get("includeObject", "Metadata")
            )
            result["metadata"] = list_meta
            return _json(result)
        if rtype.custom:  # unstructured lists always carry the key, empty on the last page
            list_meta.setdefault("continue", "")
        if table.wants_as(accept, "PartialObjectMetadataList"):
            partial = [table.partial_object_metadata(obj) for obj in items]
            return _json(
                {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
                 "items": partial}
            )  # fmt: skip
        return _json(
            {
                "kind": f"{rtype.kind}List",
                "apiVersion": rtype.api_version,
                "metadata": list_meta,
                "items": items,
            }
        )

    def _delete_collection(
        self, rtype: ResourceType, api: ApiPath, params: Mapping[str, str]
    ) -> aiohttp.web.StreamResponse:
        items = self.state.select(rtype, api.namespace, parse_selectors(params, selectable_fields(rtype)))
        for obj in items:
            meta = obj["metadata"]
            self.state.delete(rtype, meta.get("namespace"), meta["name"])
        return _json(
            {
                "kind": f"{rtype.kind}List",
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(self.state.rv)},
                "items": items,
            }
        )

    async def _watch(
        self, request: rendering.Request, rtype: ResourceType, api: ApiPath
    ) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        epoch = self.faults.watch_epoch
        return await serve_watch(
            raw,
            self.state,
            rtype,
            namespace=api.namespace,
            name=api.name,
            params=dict(request.params),
            accept=request.headers.get("Accept", ""),
            bookmark_interval=self.bookmark_interval,
            closing=self.closing,
            cut=lambda: self.faults.watch_epoch != epoch,
        )

    # ---- discovery -----------------------------------------------------------------------------

    def _root_paths(self) -> set[str]:
        paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi/v3"}
        for group, versions in self.state.groups().items():
            if group:
                paths.add(f"/apis/{group}")
                paths.update(f"/apis/{group}/{version}" for version in versions)
        return paths

    def _api_versions(self) -> JsonObject:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}],
        }

    def _group_entry(self, group: str, versions: list[str]) -> JsonObject:
        listed = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
        return {"name": group, "versions": listed, "preferredVersion": listed[0]}

    def _group(self, group: str) -> JsonObject:
        versions = self.state.groups().get(group)
        if not versions:
            raise errors.resource_not_found()
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_entry(group, versions)}

    def _groups(self) -> JsonObject:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                self._group_entry(group, versions) for group, versions in self.state.groups().items() if group
            ],
        }

    def _resource_list(self, group: str, version: str) -> JsonObject:
        rtypes = [rtype for (g, v, _), rtype in self.state.types.items() if (g, v) == (group, version)]
        if not rtypes and group != "":
            raise errors.resource_not_found()
        resources: list[JsonObject] = []
        for rtype in rtypes:
            resources.append(
                {
                    "name": rtype.plural,
                    "singularName": rtype.singular,
                    "namespaced": rtype.namespaced,
                    "kind": rtype.kind,
                    "verbs": list(rtype.verbs),
                    "shortNames": list(rtype.short_names),
                    "categories": list(rtype.categories),
                }
            )
            if rtype.status_subresource:
                resources.append(
                    {
                        "name": f"{rtype.plural}/status",
                        "singularName": "",
                        "namespaced": rtype.namespaced,
                        "kind": rtype.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _openapi(self, path: str) -> JsonObject:
        from publishing_testkit.kube_emulator.openapi import openapi_document

        return openapi_document(self.state, path)


def _page(items: list[JsonObject], params: Mapping[str, str], rv: int) -> tuple[list[JsonObject], JsonObject]:
    """`limit`/`continue` paging over the name-ordered items (continuing from the last key given out)."""
    list_rv = rv
    if token := params.get("continue"):
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            list_rv, after = int(decoded["rv"]), tuple(decoded["after"])
        except (ValueError, KeyError, TypeError):
            raise errors.bad_request("continue key is not valid: malformed") from None
        items = [obj for obj in items if _key(obj) > after]
    meta: JsonObject = {"resourceVersion": str(list_rv)}
    limit = int(params.get("limit") or 0) if (params.get("limit") or "0").isdigit() else 0
    if limit and len(items) > limit:
        rest = len(items) - limit
        items = items[:limit]
        after_key = list(_key(items[-1]))
        meta["continue"] = base64.urlsafe_b64encode(
            json.dumps({"rv": list_rv, "after": after_key}).encode()
        ).decode()
        meta["remainingItemCount"] = rest
    return items, meta


def _key(obj: JsonObject) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return (str(meta.get("namespace") or ""), str(meta.get("name", "")))


def _drop(raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
    """Lose the connection without an answer (the returned response is never written)."""
    if raw.transport is not None:
        raw.transport.abort()
    return aiohttp.web.Response(status=499)


_FAULT_REASONS = {
    409: ("Conflict", errors.STALE),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: (
        "InternalError",
        "an error on the server (an injected fault) prevented the request from succeeding",
    ),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request (an injected fault)"),
    504: ("Timeout", "the server was unable to return a response in the time allotted (an injected fault)"),
}


def _fault_status(fault: ApiFault) -> JsonObject:
    reason, message = _FAULT_REASONS.get(fault.code, ("InternalError", f"an injected HTTP {fault.code}"))
    if fault.code == 409:
        message = f"Operation cannot be fulfilled on {fault.resource or 'the object'}: {message}"
    details: JsonObject = {"retryAfterSeconds": fault.retry_after} if fault.retry_after is not None else {}
    return errors.ApiError(fault.code, reason, message, details).to_status()


def _retry_after(fault: ApiFault) -> dict[str, str]:
    return {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}


def _json(
    payload: Any,
    status: int = 200,
    warnings: list[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> aiohttp.web.Response:
    sent = CIMultiDict[str](headers or {})
    for warning in warnings or []:  # RFC 7234 warn-code 299, as the API server sends them
        quoted = warning.replace("\\", "\\\\").replace('"', '\\"')
        sent.add("Warning", f'299 - "{quoted}"')
    return aiohttp.web.Response(
        headers=sent,
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _is_watch(params: Mapping[str, str]) -> bool:
    return params.get("watch") in ("true", "1")


def _action(method: str, api: ApiPath | None, watch: bool) -> kmock.action | None:
    """The kmock action of a request, for kmock's request log and criteria."""
    if api is None or api.plural is None:
        return None
    method = method.upper()
    if method == "GET":
        return kmock.action.WATCH if watch else (kmock.action.FETCH if api.name else kmock.action.LIST)
    if method == "POST" and not api.name:
        return kmock.action.CREATE
    if method in ("PATCH", "PUT") and api.name:
        return kmock.action.UPDATE
    if method == "DELETE" and api.name:
        return kmock.action.DELETE
    return None
