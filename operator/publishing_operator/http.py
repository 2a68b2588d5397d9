"""The operator's pooled HTTP clients (Expo, the Kubernetes API, Secrets), built in one place.

httpx's own pool (httpcore 1.0) re-examines every pooled connection and every queued request on
each request and each response (`_assign_requests_to_connections`: `has_expired` ->
`is_socket_readable` per connection, a scan of connections per queued request). With a few hundred
builds in flight that was ~70 % of the operator's CPU (issue 14; bench.side_by_side burst 200:
~50 ms CPU per build). The clients keep httpx's API (requests, responses, errors) and send
through aiohttp's connection pool instead (aiohttp is already there: kopf uses it): ~20 ms.

Errors keep httpx's meaning, which the Expo client relies on to tell a request that never left
(ConnectError, ConnectTimeout, PoolTimeout: safe to retry a create) from one that may have reached
the server (ReadError, RemoteProtocolError, ReadTimeout: ambiguous). The PyPI package
httpx-aiohttp 0.2.0 maps a server disconnect after sending to ConnectTimeout, so it is not used.

Every exchange is bounded as a whole by the read timeout (EXPO_TIMEOUT for Expo): a create request
reaches Expo within it or never, which the exactly-once start's claim window relies on.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import httpx

KEEPALIVE_SECONDS = 30.0


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests over one aiohttp session (created on first use, inside the running loop)."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True, max_connections: int = 100) -> None:
        self._ssl: ssl.SSLContext | bool = verify if isinstance(verify, ssl.SSLContext) else bool(verify)
        self._limit = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, keepalive_timeout=KEEPALIVE_SECONDS, ssl=self._ssl
            )
            # No cookies, no proxies from the environment, no automatic decompression (httpx decodes).
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=timeouts.get("read"),  # the whole exchange, as the claim window assumes
            connect=timeouts.get("pool"),  # waiting for a pooled connection, as httpx's pool timeout
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = await request.aread()
        try:
            async with self._get_session().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                content = await response.read()
        # Before a byte was sent (safe to retry anything): no free connection in time, or none made.
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS, TLS handshake
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        # After sending: the server may have acted on the request.
        except (TimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientResponseError,
        ) as exc:
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def pooled_client(
    *,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
    timeout: float,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An httpx client over aiohttp's pool (`transport` wins, e.g. a test's MockTransport)."""
    kwargs: dict[str, Any] = {"base_url": base_url, "headers": headers, "verify": verify, "timeout": timeout}
    if transport is None:
        transport = AiohttpTransport(verify=verify, max_connections=max_connections)
    return httpx.AsyncClient(transport=transport, **kwargs)
