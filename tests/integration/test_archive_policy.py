"""Archive sources cannot reach inside the cluster (issue 16), over real sockets.

- The real operator: PublishingBuilds whose archive URL points at the emulated Kubernetes API server
  (directly, and through a redirect from an allowed archive host) or at a listener on loopback end
  Failed/SourceNotAllowed with the policy's message, and no request reaches those addresses.
- The Expo client's download with the system resolver: a loopback URL is refused without a connection.
- TLS: the guarded connection goes to the checked IP address while the certificate is still verified
  against the URL's host name.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import kmock
import pytest
from aiohttp import web

from publishing_operator.api import SOURCE_NOT_ALLOWED_CODE
from publishing_operator.egress import ArchivePolicy
from publishing_operator.expo.archive import download_archive
from publishing_operator.expo.client import ExpoClient
from publishing_operator.expo.errors import ExpoTransientError, ExpoUserError
from publishing_operator.guarded_http import guarded_client
from publishing_testkit.expo_simulator.server import SimulatorHandle
from publishing_testkit.kube_emulator.tls import issue
from tests.fixtures.egress import FakeResolver
from tests.fixtures.expo import EXPO_TOKEN, ArchiveServer, make_tarball
from tests.fixtures.operator import Stack, condition, phase, publishing_build

pytestmark = pytest.mark.integration

TARBALL = make_tarball({"package.json": b'{"name": "app"}'})
PUBLIC = "93.184.215.14"


@dataclass
class Listener:
    """A TCP listener on loopback that counts connections (and answers none)."""

    port: int = 0
    connections: int = 0
    server: asyncio.Server | None = field(default=None, repr=False)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    seen = Listener()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        writer.close()

    seen.server = await asyncio.start_server(accept, "127.0.0.1", 0)
    seen.port = seen.server.sockets[0].getsockname()[1]
    async with seen.server:
        yield seen


def archive_build(name: str, url: str) -> dict[str, Any]:
    return publishing_build(
        name, platform="android", submit=False, source={"archive": {"url": url, "workflow": "generic"}}
    )


@pytest.mark.emulator_only("it counts the requests that reach the API server with kmock's request log")
async def test_archive_urls_into_the_cluster_fail_without_reaching_it(
    stack: Stack, archive_server: ArchiveServer, listener: Listener
) -> None:
    api = stack.kube.url  # the emulated API server, as the issue's reproduction used
    probes: list[kmock.Request] = []
    stack.kube.handle.emulator[lambda request: "ssrf-probe" in str(request.url)] >> probes
    docs = [
        archive_build("ssrf-api-server", f"{api}/api/v1/namespaces/default/secrets/ssrf-probe-1.tar.gz"),
        archive_build("ssrf-listener", f"https://127.0.0.1:{listener.port}/ssrf-probe-2.tar.gz"),
        archive_build(
            "ssrf-redirect",  # an allowed host bounces the request inward
            archive_server.redirect("bounce.tar.gz", f"{api}/api/v1/namespaces/default/secrets/ssrf-probe-3"),
        ),
    ]
    stack.apply_example_secrets()
    stack.apply(*docs)
    stack.operator(archive_allowed_hosts=archive_server.host_port)

    message = ArchivePolicy().refusal_message
    for doc in docs:
        done = await stack.wait_phase(doc["metadata"]["name"], "Succeeded", "Failed", timeout=60)
        assert phase(done) == "Failed", done["status"]
        cond = condition(done, "Succeeded")
        assert (cond["status"], cond["reason"], cond["message"]) == ("False", "SourceNotAllowed", message)
        assert done["status"]["message"] == message
        assert done["status"]["history"][-1]["reason"] == "SourceNotAllowed"

    assert probes == []  # no archive request reached the API server
    assert listener.connections == 0
    assert len(archive_server.requests) == 1  # the allowed host was asked once, and answered a redirect
    assert stack.expo.state.calls_of("createUploadSession") == []
    assert stack.builds() == []
    log = stack.operator_logs()
    assert re.search(r"refused by the archive source policy: .*127\.0\.0\.1", log)


async def test_client_refuses_a_loopback_url_with_the_system_resolver(
    expo_simulator: SimulatorHandle, listener: Listener
) -> None:
    async with ExpoClient(expo_simulator.graphql_url, EXPO_TOKEN, timeout=5.0) as client:
        for url in (
            f"https://127.0.0.1:{listener.port}/a.tar.gz",
            f"https://localhost:{listener.port}/a.tar.gz",
            f"http://[::ffff:127.0.0.1]:{listener.port}/a.tar.gz",
            f"https://{2130706433}:{listener.port}/a.tar.gz",
        ):
            with pytest.raises(ExpoUserError) as caught:
                await client.upload_archive(url=url, sha256=None)
            assert caught.value.error_code == SOURCE_NOT_ALLOWED_CODE
            assert caught.value.message == ArchivePolicy().refusal_message
    assert listener.connections == 0
    assert expo_simulator.state.calls_of("createUploadSession") == []


class ToLoopback(httpcore.AsyncNetworkBackend):
    """Stands in for the internet: records the (checked) address asked for, connects to loopback."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[str] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kw: Any) -> Any:
        self.asked.append(host)
        return await self._real.connect_tcp("127.0.0.1", self.port, timeout, **kw)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


@pytest.fixture
async def tls_archive_host() -> AsyncIterator[tuple[int, Any, list[str]]]:
    """An HTTPS server on loopback whose certificate names only `archive.test`."""
    cert = issue("archive.test")
    paths: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        paths.append(request.path)
        return web.Response(body=TARBALL, content_type="application/gzip")

    app = web.Application()
    app.router.add_get("/{path:.+}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=cert.server_context())
    await site.start()
    try:
        yield runner.addresses[0][1], cert.client_context(), paths
    finally:
        await runner.cleanup()


async def test_tls_verifies_the_url_name_while_connecting_to_the_checked_address(
    tls_archive_host: tuple[int, Any, list[str]],
) -> None:
    port, trust, paths = tls_archive_host
    policy = ArchivePolicy()
    resolver = FakeResolver({"archive.test": [PUBLIC], "impostor.test": [PUBLIC]})
    network = ToLoopback(port)
    async with guarded_client(policy, resolver=resolver, network=network, verify=trust) as http:
        archive = await download_archive(
            http, "https://archive.test/app.tar.gz", policy=policy, sha256=None, max_bytes=10**6, timeout=10
        )
        archive.close()
        assert archive.sha256 == hashlib.sha256(TARBALL).hexdigest()
        # The same server under a name its certificate does not carry: the TLS handshake fails.
        with pytest.raises(ExpoTransientError, match="ConnectError"):
            await download_archive(
                http,
                "https://impostor.test/app.tar.gz",
                policy=policy,
                sha256=None,
                max_bytes=10**6,
                timeout=10,
            )
    assert network.asked == [PUBLIC, PUBLIC]  # connections went to the checked address only
    assert paths == ["/app.tar.gz"]  # the impostor's request never got past the handshake
