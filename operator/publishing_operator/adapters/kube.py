"""The one Kubernetes API adapter: every call the operator makes outside kopf's watch stream.

kopf owns the watch stream and the login. Everything else goes through `KubeApi`, one pooled client
(http.py) with kopf's credentials: status writes (guarded by resourceVersion: a write is won, not just made),
finalizer and label patches, Secret reads (the resource's own namespace only), Events, and the
lists and deletes of history retention. It logs in again (adapters/login: a rotated
service-account token, an exec plugin run anew) when its credentials expire, and once on a 401
before retrying the request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import kopf

from publishing_operator.adapters.login import LoginError, same_tls_identity
from publishing_operator.api import GROUP, PLURAL, VERSION
from publishing_operator.http import PooledHttp, as_pooled, pooled_client

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

Body = dict[str, Any]


class KubeError(Exception):
    """A Kubernetes API call failed; `status` is the HTTP status (0 for a transport error).
    The message carries the API's reason, never a request or response body."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def conflict(self) -> bool:
        """409: someone else wrote the object since we read it (or it was re-created)."""
        return self.status == 409


class SecretReadError(KubeError):
    """A Secret could not be read for a reason other than "not found" (transient: retry). Names the
    Secret and the API's reason (RBAC errors say which permission is missing), never its data."""

    def __init__(self, namespace: str, name: str, detail: str, status: int) -> None:
        super().__init__(f'cannot read Secret "{name}" in namespace "{namespace}": {detail}', status)
        self.namespace = namespace
        self.name = name


@dataclass(frozen=True)
class SecretData:
    """A Secret's `.data`, base64-decoded, and the resourceVersion it was read at (a cache key)."""

    data: Mapping[str, bytes]
    resource_version: str

    def __repr__(self) -> str:  # never the values
        return f"SecretData(keys={sorted(self.data)!r}, resource_version={self.resource_version!r})"


def _pb_path(namespace: str | None, name: str | None = None) -> str:
    base = f"/apis/{GROUP}/{VERSION}"
    path = f"{base}/namespaces/{quote(namespace, safe='')}/{PLURAL}" if namespace else f"{base}/{PLURAL}"
    return f"{path}/{quote(name, safe='')}" if name else path


def _core_path(namespace: str, plural: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/{plural}"
    return f"{path}/{quote(name, safe='')}" if name else path


def _lease_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}/leases"
    return f"{path}/{quote(name, safe='')}" if name else path


class KubeApi:
    def __init__(
        self,
        client: PooledHttp | httpx.AsyncClient,
        relogin: Callable[[], kopf.ConnectionInfo | None] | None = None,
        *,
        info: kopf.ConnectionInfo | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = as_pooled(client)
        self._relogin = relogin
        self._info = info
        self._timeout = timeout
        self._transport = transport
        self._retired: list[PooledHttp] = []  # replaced on a new client certificate; closed last

    @classmethod
    def from_connection_info(
        cls,
        info: kopf.ConnectionInfo,
        *,
        timeout: float = 30.0,
        relogin: Callable[[], kopf.ConnectionInfo | None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> KubeApi:
        """Same server, credentials and TLS as kopf's own login."""
        client = _client_for(info, timeout, transport)
        return cls(client, relogin, info=info, timeout=timeout, transport=transport)

    def __repr__(self) -> str:  # the headers hold a token: show only where it points
        return f"KubeApi({str(self._client.base_url)!r})"

    async def aclose(self) -> None:
        for client in (*self._retired, self._client):
            await client.aclose()

    # -- PublishingBuilds ------------------------------------------------------------------------

    async def get_publishing_build(self, namespace: str, name: str) -> Body | None:
        """The object as stored now; None when it is gone."""
        return await self._get_optional(_pb_path(namespace, name))

    async def patch_status(
        self, namespace: str, name: str, patch: Mapping[str, Any], *, resource_version: str | None = None
    ) -> Body:
        """Merge-patch `status` through the status subresource; returns the updated object.

        With `resource_version` the write succeeds only if the object is still at that version
        (409 otherwise): whoever wins the write may act on it (the request key before an EAS create).
        """
        body: Body = {"status": dict(patch)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._request("PATCH", _pb_path(namespace, name) + "/status", body, MERGE_PATCH)

    async def patch_metadata(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> Body:
        """JSON-patch the object (finalizers, labels), guarded by `test` ops the caller includes.
        A failed `test` (HTTP 422) means the object changed since it was read: raised as a 409."""
        try:
            return await self._request("PATCH", _pb_path(namespace, name), ops, JSON_PATCH)
        except KubeError as exc:
            if exc.status == 422 and any(op.get("op") == "test" for op in ops):
                raise KubeError(f"{exc} (the object changed since it was read)", 409) from None
            raise

    async def list_publishing_builds(self, namespace: str | None = None) -> list[Body]:
        body = await self._request("GET", _pb_path(namespace))
        items = body.get("items", [])
        return [item for item in items if isinstance(item, dict)]

    async def delete_publishing_build(self, namespace: str, name: str, uid: str) -> None:
        """Delete exactly that object (uid precondition): a re-created namesake is never touched."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        try:
            await self._request("DELETE", _pb_path(namespace, name), body)
        except KubeError as exc:
            if exc.status not in (404, 409):
                raise

    # -- Secrets ---------------------------------------------------------------------------------

    async def read_secret(self, namespace: str, name: str) -> SecretData | None:
        """The Secret's data in `namespace` (the resource's own); None when it does not exist.

        The name is one path segment whatever it says: `/` and `%` are escaped, and "." or ".."
        (which an HTTP client resolves as dot segments, climbing out of `secrets/`) name no Secret."""
        if name in (".", "..") or not name:
            return None
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets/{quote(name, safe='')}"
        try:
            body = await self._request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise SecretReadError(namespace, name, _detail(exc), exc.status) from None
        try:
            data = body.get("data") or {}
            decoded = {str(key): base64.b64decode(value, validate=True) for key, value in data.items()}
        except (ValueError, AttributeError, TypeError, binascii.Error):
            # Never echo the body: it is the Secret.
            raise SecretReadError(namespace, name, "malformed Secret in the API response", 200) from None
        rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
        return SecretData(decoded, rv)

    # -- Leases (leader election) -------------------------------------------------------------------

    async def get_lease(self, namespace: str, name: str) -> Body | None:
        return await self._get_optional(_lease_path(namespace, name))

    async def create_lease(self, namespace: str, body: Mapping[str, Any]) -> Body:
        """409 when someone created it first."""
        return await self._request("POST", _lease_path(namespace), dict(body))

    async def replace_lease(self, namespace: str, name: str, body: Mapping[str, Any]) -> Body:
        """PUT with the body's resourceVersion: 409 when someone else wrote the Lease since."""
        return await self._request("PUT", _lease_path(namespace, name), dict(body))

    # -- ConfigMaps (the release ledger, in the operator's own namespace) -------------------------

    async def get_config_map(self, namespace: str, name: str) -> Body | None:
        return await self._get_optional(_core_path(namespace, "configmaps", name))

    async def create_config_map(self, namespace: str, body: Mapping[str, Any]) -> Body:
        return await self._request("POST", _core_path(namespace, "configmaps"), dict(body))

    async def replace_config_map(self, namespace: str, name: str, body: Mapping[str, Any]) -> Body:
        """PUT with the body's resourceVersion: 409 when someone else wrote it since."""
        return await self._request("PUT", _core_path(namespace, "configmaps", name), dict(body))

    # -- Events ----------------------------------------------------------------------------------

    async def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        await self._request("POST", f"/api/v1/namespaces/{quote(namespace, safe='')}/events", dict(event))

    # -- plumbing ----------------------------------------------------------------------------------

    async def _get_optional(self, path: str) -> Body | None:
        """GET; None for 404."""
        try:
            return await self._request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def _log_in_again(self, why: str) -> bool:
        """Fresh credentials (a rotated service-account token file, an exec plugin run again);
        False if there are none (the request then fails as it did, and is retried later)."""
        if self._relogin is None:
            return False
        try:
            info = await asyncio.to_thread(self._relogin)  # an exec plugin may take seconds
        except LoginError as exc:
            log.warning("%s, and logging in again failed: %s", why, exc)
            return False
        if info is None:
            return False
        if self._info is not None and not same_tls_identity(self._info, info):
            # A new client certificate needs a new TLS context: a new client (requests in flight
            # on the old one finish; it is closed with this adapter).
            self._retired.append(self._client)
            self._client = _client_for(info, self._timeout, self._transport)
        else:
            self._client.headers.update(info.as_http_headers())
        self._info = info
        log.info("%s: logged in again with fresh credentials", why)
        return True

    def _expired(self) -> bool:
        expiration = self._info.expiration if self._info is not None else None
        if expiration is None:
            return False
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        return datetime.now(UTC) >= expiration

    async def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Body:
        headers = {"Content-Type": content_type} if body is not None else {}
        if self._expired():
            await self._log_in_again("Kubernetes credentials expired")
        try:
            response = await self._client.request(method, path, json=body, headers=headers)
            if response.status_code == 401 and await self._log_in_again("Kubernetes API answered 401"):
                response = await self._client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise KubeError(f"{method} {path}: {type(exc).__name__}", 0) from None
        if response.status_code >= 400:
            reason = ""
            with contextlib.suppress(ValueError, AttributeError):
                body_json = response.json()
                if isinstance(body_json, dict) and body_json.get("kind") == "Status":
                    reason = str(body_json.get("message", ""))[:300]
            raise KubeError(
                f"{method} {path}: HTTP {response.status_code} {reason}".rstrip(), response.status_code
            )
        if not response.content:
            return {}
        try:
            result = response.json()
        except ValueError:  # not JSON (a proxy's error page, a cut body): transient like a 5xx
            raise KubeError(f"{method} {path}: a malformed answer (HTTP {response.status_code})", 0) from None
        return result if isinstance(result, dict) else {}


def _client_for(
    info: kopf.ConnectionInfo, timeout: float, transport: httpx.AsyncBaseTransport | None
) -> PooledHttp:
    headers = {"Accept": "application/json", "User-Agent": "publishing-operator", **info.as_http_headers()}
    verify: ssl.SSLContext | bool = info.as_ssl_context() if info.server.startswith("https") else True
    return pooled_client(
        base_url=info.server.rstrip("/"), headers=headers, verify=verify, timeout=timeout, transport=transport
    )


def _detail(exc: KubeError) -> str:
    """`HTTP 403: <the API's reason>` out of a KubeError message (which starts with the method)."""
    text = str(exc)
    marker = text.find("HTTP ")
    return text[marker:] if marker >= 0 else text
