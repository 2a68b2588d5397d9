"""An HTTP client for tenant URLs that can only connect where the egress policy allows.

httpcore opens every connection through its network backend's `connect_tcp(host, port)` and only
then wraps the socket in TLS with `server_hostname` = the URL's host (httpcore 1.0
`_async/connection.py`, `AsyncHTTPConnection._connect`). `GuardedBackend.connect_tcp` therefore
resolves the name itself, checks every address (`ArchivePolicy.check_addresses`) and connects to
one of those checked addresses: the address checked is the address connected to (no DNS rebinding
window), while TLS still verifies the certificate against the name in the URL.

The client shares nothing with the Expo client and carries nothing of the operator's: no auth, no
cookie is ever stored (so none travels to a redirect target), and `trust_env=False`, so neither
`HTTP(S)_PROXY` (a proxy would make the connection to the proxy, hiding the real destination from
the check) nor `SSL_CERT_FILE` apply. Redirects are not followed by httpx; the caller follows them
and checks each hop's URL (`ArchivePolicy.check_url`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpcore
import httpx

from publishing_operator import __version__
from publishing_operator.egress import ArchivePolicy, DestinationRefused, IPAddress, effective, parse_host

# (host, port) -> the host's addresses, as strings; raises socket.gaierror like getaddrinfo.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# getaddrinfo's answers for "this name has no address": the same refusal as a private address, so
# the status does not tell which internal names exist. Other failures (EAI_AGAIN...) are transient.
_NO_SUCH_NAME = {
    code
    for code in (getattr(socket, name, None) for name in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY"))
    if code is not None
}


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, connect to a checked address; refuse Unix sockets."""

    def __init__(
        self,
        policy: ArchivePolicy,
        *,
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolver
        self._network = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = parse_host(host)
        addresses = [target] if not isinstance(target, str) else await self._lookup(host, port, timeout)
        self._policy.check_addresses(target, port, addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._network.connect_tcp(
                    str(effective(address)),  # ::ffff:a.b.c.d: connect to a.b.c.d, the address checked
                    port,
                    timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next checked address may answer
        assert failure is not None
        raise failure

    async def _lookup(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                answers = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout("name resolution timed out") from None
        except socket.gaierror as exc:
            if exc.errno in _NO_SUCH_NAME:
                raise DestinationRefused(f"{host} does not resolve ({exc.strerror})") from None
            raise httpcore.ConnectError(f"name resolution failed: {exc.strerror}") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer)
            except ValueError:
                raise DestinationRefused(f"{host} resolves to {answer!r}, not an IP address") from None
            if address not in addresses:
                addresses.append(address)
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("Unix sockets are never a destination")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection goes through `GuardedBackend`.

    httpx 0.28 offers no way to pass a network backend to the pool it builds, so this transport
    builds the pool itself (`_pool` is all the inherited methods use) and skips the parent's
    constructor, which would build a second pool and SSL context for nothing.
    """

    def __init__(self, backend: GuardedBackend, *, verify: ssl.SSLContext | bool = True) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=10,
            max_keepalive_connections=2,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def _no_cookies() -> CookieJar:
    """A jar that accepts and returns no cookie: a redirect target never gets one set by the origin."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def guarded_client(
    policy: ArchivePolicy,
    *,
    resolver: Resolver = system_resolver,
    network: httpcore.AsyncNetworkBackend | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """A client for tenant URLs: guarded connections, no redirects followed, no cookies, no env."""
    backend = GuardedBackend(policy, resolver=resolver, network=network)
    return httpx.AsyncClient(
        transport=GuardedTransport(backend, verify=verify),
        trust_env=False,
        follow_redirects=False,
        cookies=_no_cookies(),
        headers={"user-agent": f"publishing-operator/{__version__}"},
    )
