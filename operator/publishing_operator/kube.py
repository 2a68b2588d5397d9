"""A small async Kubernetes API adapter (httpx) for the writes the lifecycle needs right now.

kopf owns watching, login, Events and peering. Two things must happen synchronously inside a step,
before the next EAS call, which kopf's after-handler `patch` cannot do: write the status (the
build's request key goes to the API *before* EAS is asked to build) and add or remove the
finalizer. Credentials come from kopf's login (`ConnectionInfo`).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import kopf

from publishing_operator.api import GROUP, PLURAL, VERSION
from publishing_operator.credentials import KubernetesSecretReader, SecretReadError

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class KubeError(Exception):
    """A Kubernetes API call failed; `status` is the HTTP status (0 for a transport error)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class KubeApi:
    """PublishingBuild writes, and Secret reads through credentials.py's reader (same server, same
    credentials). On 401 it logs in again once (a rotated service-account token) and retries."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        secrets: KubernetesSecretReader | None = None,
        relogin: Callable[[], kopf.ConnectionInfo | None] | None = None,
    ) -> None:
        self._client = client
        self.secrets = secrets or KubernetesSecretReader(str(client.base_url), headers=dict(client.headers))
        self._relogin = relogin

    @classmethod
    def from_connection_info(
        cls,
        info: kopf.ConnectionInfo,
        *,
        timeout: float = 30.0,
        relogin: Callable[[], kopf.ConnectionInfo | None] | None = None,
    ) -> KubeApi:
        """Same server, credentials and TLS as kopf's own login."""
        headers = {
            "Accept": "application/json",
            "User-Agent": "publishing-operator",
            **info.as_http_headers(),
        }
        verify: ssl.SSLContext | bool = info.as_ssl_context() if info.server.startswith("https") else True
        client = httpx.AsyncClient(
            base_url=info.server.rstrip("/"), headers=headers, verify=verify, timeout=timeout
        )
        return cls(client, KubernetesSecretReader.from_connection_info(info), relogin)

    async def aclose(self) -> None:
        await self._client.aclose()
        await self.secrets.aclose()

    def _log_in_again(self) -> bool:
        """Fresh credentials (e.g. the service-account token file was rotated); False if none."""
        info = self._relogin() if self._relogin is not None else None
        if info is None:
            return False
        headers = info.as_http_headers()
        self._client.headers.update(headers)
        self.secrets.use_headers(headers)
        log.info("Kubernetes API answered 401: logged in again with fresh credentials")
        return True

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """credentials.SecretReader, with one re-login on 401."""
        try:
            return await self.secrets.read_secret(namespace, name)
        except SecretReadError as exc:
            if exc.status == 401 and self._log_in_again():
                return await self.secrets.read_secret(namespace, name)
            raise

    # -- PublishingBuilds ------------------------------------------------------------------------

    @staticmethod
    def _pb_path(namespace: str | None, name: str | None = None) -> str:
        base = f"/apis/{GROUP}/{VERSION}"
        path = f"{base}/namespaces/{namespace}/{PLURAL}" if namespace else f"{base}/{PLURAL}"
        return f"{path}/{name}" if name else path

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch `status` through the status subresource; returns the updated object."""
        return await self._request(
            "PATCH", self._pb_path(namespace, name) + "/status", {"status": patch}, MERGE_PATCH
        )

    async def patch_metadata(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """JSON-patch the object (finalizers, labels), guarded by `test` ops the caller includes."""
        return await self._request("PATCH", self._pb_path(namespace, name), ops, JSON_PATCH)

    async def list_publishing_builds(self, namespace: str | None = None) -> list[dict[str, Any]]:
        body = await self._request("GET", self._pb_path(namespace))
        items = body.get("items", [])
        return [item for item in items if isinstance(item, dict)]

    async def delete_publishing_build(self, namespace: str, name: str, uid: str) -> None:
        """Delete exactly that object (uid precondition): a re-created namesake is never touched."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        try:
            await self._request("DELETE", self._pb_path(namespace, name), body)
        except KubeError as exc:
            if exc.status not in (404, 409):
                raise

    # -- plumbing ----------------------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            response = await self._client.request(method, path, json=body, headers=headers)
            if response.status_code == 401 and self._log_in_again():
                response = await self._client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise KubeError(f"{method} {path}: {type(exc).__name__}", 0) from None
        if response.status_code >= 400:
            reason = ""
            with contextlib.suppress(ValueError):
                reason = str(response.json().get("message", ""))[:300]
            raise KubeError(
                f"{method} {path}: HTTP {response.status_code} {reason}".rstrip(), response.status_code
            )
        if not response.content:
            return {}
        result = response.json()
        return result if isinstance(result, dict) else {}
