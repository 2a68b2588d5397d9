"""The operator's HTTP client (aiohttp's pool, http.PooledHttp) keeps httpx's error meaning.

The Expo client retries a create only when the request never left (ConnectError, ConnectTimeout,
PoolTimeout); anything after sending must surface as a read or protocol error (ambiguous).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from publishing_operator.http import PooledHttp

pytestmark = pytest.mark.integration

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head, await reader.readexactly(length)


@contextlib.asynccontextmanager
async def client(timeout: float = 5.0) -> AsyncIterator[PooledHttp]:
    http = PooledHttp(timeout=timeout)
    try:
        yield http
    finally:
        await http.aclose()


async def test_a_request_and_its_gzip_response_round_trip() -> None:
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        seen.extend([head, body])
        payload = gzip.compress(json.dumps({"ok": True}).encode())
        writer.write(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"X-Request-Id: r1\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        await writer.drain()

    async for url in serve(answer):
        async with client() as http:
            response = await http.request(
                "POST", url + "/graphql", json={"q": 1}, headers={"authorization": "Bearer t"}
            )
    assert response.status_code == 201
    assert response.json() == {"ok": True}
    assert response.headers["x-request-id"] == "r1"
    assert b"authorization: Bearer t" in seen[0].replace(b"Authorization", b"authorization")
    assert json.loads(seen[1]) == {"q": 1}


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.request("POST", f"http://127.0.0.1:{port}/graphql", json={})


async def test_a_drop_after_the_request_arrived_is_not_a_connect_error() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async for url in serve(drop):
        async with client() as http:
            with pytest.raises(httpx.TransportError) as caught:
                await http.request("POST", url + "/graphql", json={"mutation": 1})
    assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError)


async def test_no_answer_in_time_is_a_read_timeout() -> None:
    release = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()
        writer.close()

    async for url in serve(stall):
        async with client(timeout=0.2) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.request("POST", url + "/graphql", json={})
        release.set()
