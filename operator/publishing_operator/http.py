"""The operator's pooled HTTP client (Expo's GraphQL API, the Kubernetes API), built in one place.

Requests go straight through aiohttp's connection pool (aiohttp is already there: kopf uses it).
Two layers were measured and dropped on the way (issue 14, bench.side_by_side burst 200):
- httpx's own pool (httpcore 1.0) re-examines every pooled connection and every queued request on
  each request and each response (`_assign_requests_to_connections`: `has_expired` ->
  `is_socket_readable` per connection): ~70 % of the operator's CPU, ~50 ms per build.
- httpx's client API over aiohttp's pool (URL parsing and merging, header and cookie models, the
  response model): ~345 µs of CPU per request against ~135 µs for aiohttp alone, a quarter of the
  operator's CPU once the pool was gone.

`PooledHttp` is the small API the operator needs (a request with a JSON body, the answer read whole
or capped) and keeps httpx's error vocabulary, which the Expo client relies on to tell a request
that never left (ConnectError, ConnectTimeout, PoolTimeout: safe to retry a create) from one that
may have reached the server (ReadError, RemoteProtocolError, ReadTimeout: ambiguous). The PyPI
package httpx-aiohttp 0.2.0 maps a server disconnect after sending to ConnectTimeout, so it is not
used. Every exchange is bounded as a whole by its timeout (EXPO_TIMEOUT for Expo): a create request
reaches Expo within it or never, which the exactly-once start's claim window relies on.

Tests hand in an `httpx.AsyncClient` (e.g. over `httpx.MockTransport`) instead: `PooledHttp.over`.
"""

from __future__ import annotations

import json as jsonlib
import ssl
from collections.abc import Mapping, MutableMapping
from typing import Any

import aiohttp
import httpx
from multidict import CIMultiDict, CIMultiDictProxy

KEEPALIVE_SECONDS = 30.0
READ_CHUNK = 64 * 1024


class HttpResponse:
    """Status, headers (case-insensitive) and the body read whole; `content` is None when the body
    was larger than the request's `max_bytes` (the rest was not read)."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes | None) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        """The body as JSON (ValueError when it is none)."""
        if self.content is None:
            raise ValueError("the body was not read: larger than allowed")
        return jsonlib.loads(self.content)


def encode_json(value: Any) -> bytes:
    """What httpx sends for `json=`: compact, UTF-8, no NaN."""
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class PooledHttp:
    """Requests over one aiohttp session (created on first use, inside the running loop), or over an
    httpx client (tests). `headers` are sent with every request (a request's own headers win)."""

    def __init__(
        self,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float,
        max_connections: int = 100,
        httpx_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._ssl: ssl.SSLContext | bool = verify if isinstance(verify, ssl.SSLContext) else bool(verify)
        self._limit = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._httpx = httpx_client
        self.headers: MutableMapping[str, str] = (
            httpx_client.headers if httpx_client is not None else CIMultiDict(headers or {})
        )
        if httpx_client is not None and headers:
            httpx_client.headers.update(headers)

    @classmethod
    def over(cls, client: httpx.AsyncClient) -> PooledHttp:
        """Requests through an httpx client (its transport, base URL, headers and timeout)."""
        timeout = client.timeout.read
        return cls(base_url=str(client.base_url), timeout=timeout or 30.0, httpx_client=client)

    def __repr__(self) -> str:  # the headers may hold a token: show only where it points
        return f"PooledHttp({self.base_url!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, keepalive_timeout=KEEPALIVE_SECONDS, ssl=self._ssl
            )
            # No cookies, no proxies from the environment; gzip and deflate answers are decoded.
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
            )
        return self._session

    def url(self, url: str) -> str:
        return url if url.startswith(("http://", "https://")) else self.base_url + url

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 -- handed to aiohttp, which bounds the exchange
        max_bytes: int | None = None,
    ) -> HttpResponse:
        """One exchange; `url` is absolute or a path under `base_url`. Raises httpx's transport
        errors (httpx.TransportError) with their meaning: sent or not sent."""
        body = encode_json(json) if json is not None else None
        merged = CIMultiDict(self.headers)
        if body is not None:
            merged.setdefault("Content-Type", "application/json")
        if headers:
            merged.update(headers)
        seconds = self.timeout if timeout is None else timeout
        if self._httpx is not None:
            return await self._via_httpx(method, url, body, merged, seconds, max_bytes)
        return await self._via_aiohttp(method, self.url(url), body, merged, seconds, max_bytes)

    async def _via_aiohttp(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: CIMultiDict[str],
        seconds: float,
        max_bytes: int | None,
    ) -> HttpResponse:
        timeout = aiohttp.ClientTimeout(
            total=seconds,  # the whole exchange, as the claim window assumes
            connect=seconds,  # waiting for a pooled connection (httpx's pool timeout) and connecting
            sock_connect=seconds,
            sock_read=seconds,
        )
        try:
            async with self._get_session().request(
                method, url, headers=headers, data=body, allow_redirects=False, timeout=timeout
            ) as response:
                content = await _read(response, max_bytes)
                return HttpResponse(response.status, CIMultiDictProxy(CIMultiDict(response.headers)), content)
        # Before a byte was sent (safe to retry anything): no free connection in time, or none made.
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out") from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS, TLS handshake
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        # After sending: the server may have acted on the request.
        except (TimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientResponseError,
        ) as exc:
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def _via_httpx(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: CIMultiDict[str],
        seconds: float,
        max_bytes: int | None,
    ) -> HttpResponse:
        assert self._httpx is not None
        request = self._httpx.build_request(
            method, url, content=body, headers=list(headers.items()), timeout=seconds
        )
        response = await self._httpx.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            content: bytes | None = None
            if max_bytes is None or not (declared.isdigit() and int(declared) > max_bytes):
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        break
                    chunks.append(chunk)
                else:
                    content = b"".join(chunks)
        finally:
            await response.aclose()
        return HttpResponse(
            response.status_code, CIMultiDictProxy(CIMultiDict(response.headers.multi_items())), content
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._httpx is not None:
            await self._httpx.aclose()


async def _read(response: aiohttp.ClientResponse, max_bytes: int | None) -> bytes | None:
    """The body, or None as soon as it grows beyond `max_bytes` (what is left is not read)."""
    if max_bytes is None:
        return await response.read()
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        response.release()
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def pooled_client(
    *,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
    timeout: float,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PooledHttp:
    """The operator's client: aiohttp's pool, or `transport` (e.g. a test's MockTransport) through httpx."""
    if transport is not None:
        client = httpx.AsyncClient(base_url=base_url, headers=headers, transport=transport, timeout=timeout)
        return PooledHttp.over(client)
    return PooledHttp(
        base_url=base_url, headers=headers, verify=verify, timeout=timeout, max_connections=max_connections
    )


def as_pooled(http: PooledHttp | httpx.AsyncClient) -> PooledHttp:
    return http if isinstance(http, PooledHttp) else PooledHttp.over(http)
