"""One `ExpoClient` per distinct Expo token, sharing one connection pool (the factory the controller
is given; tests give it a fake)."""

from __future__ import annotations

import hashlib
from typing import Protocol

from publishing_operator.egress import ArchivePolicy
from publishing_operator.expo.client import ExpoClient
from publishing_operator.expo.transport import RequestHook
from publishing_operator.http import PooledHttp


class ExpoClientFactory(Protocol):
    def for_token(self, token: str) -> ExpoClient: ...


class ExpoClients:
    def __init__(
        self,
        api_url: str,
        http: PooledHttp,
        on_request: RequestHook | None = None,
        *,
        timeout: float = 30.0,
        archive_policy: ArchivePolicy | None = None,
        batch_linger: float = 0.0,
    ) -> None:
        self._batch_linger = batch_linger
        self._api_url = api_url
        self._timeout = timeout
        self._http = http
        self._on_request = on_request
        self._archive_policy = archive_policy  # None: ExpoClient's secure defaults
        self._clients: dict[str, ExpoClient] = {}

    def for_token(self, token: str) -> ExpoClient:
        """Keyed by the token's hash, never by the token itself."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        client = self._clients.get(digest)
        if client is None:
            client = self._clients[digest] = ExpoClient(
                self._api_url,
                token,
                http=self._http,
                on_request=self._on_request,
                timeout=self._timeout,
                archive_policy=self._archive_policy,
                batch_linger=self._batch_linger,
            )
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        await self._http.aclose()
