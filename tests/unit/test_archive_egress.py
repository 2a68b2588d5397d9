"""Archive downloads cannot reach inside the cluster (issue 16): hostile URLs and resolutions, through
the real download path (`download_archive` over `guarded_client`) with a scripted resolver and network.

Every refusal is the same user error (code SOURCE_NOT_ALLOWED, the policy's one message) and opens no
connection to the refused address; every allowed case connects to the checked IP address.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket

import pytest

from publishing_operator.api import SOURCE_NOT_ALLOWED_CODE
from publishing_operator.egress import ArchivePolicy, DestinationRefused, parse_allow_list
from publishing_operator.expo.archive import MAX_REDIRECTS, DownloadedArchive, download_archive
from publishing_operator.expo.errors import ExpoTransientError, ExpoUserError
from publishing_operator.guarded_http import GuardedBackend, guarded_client
from tests.fixtures.egress import FakeNetwork, FakeResolver, SeenRequest, response, serve
from tests.fixtures.expo import make_tarball

TARBALL = make_tarball({"package.json": b'{"name": "app"}'})
PUBLIC = "93.184.215.14"
PUBLIC_2 = "93.184.215.15"
PUBLIC_6 = "2606:4700::6810:84e5"

# What the test resolver answers, per name. Unknown names fail like NXDOMAIN.
DNS: dict[str, list[str] | list[list[str]]] = {
    "public.example": [PUBLIC],
    "public2.example": [PUBLIC_2],
    "v6.example": [PUBLIC_6],
    "two.example": [PUBLIC, PUBLIC_2],
    "xn--bcher-kva.example": [PUBLIC],
    "internal.example": ["10.0.0.5"],
    "kubernetes.default.svc": ["10.96.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "loop.example": ["127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "mixed.example": [PUBLIC, "10.0.0.5"],
    "mixed6.example": [PUBLIC_6, "fd00::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "zero.example": ["0.0.0.0"],
    "cgnat.example": ["100.64.0.1"],
    "linklocal6.example": ["fe80::1"],
    "scoped6.example": ["fe80::1%eth0"],
    "multicast.example": ["224.0.0.1"],
    "sixtofour.example": ["2002:7f00:1::1"],
    "ula.example": ["fd12:3456::1"],
    "empty.example": [],
    "garbage.example": ["not-an-address"],
    "artifacts.corp": ["10.1.2.3"],
    "rebind.example": [[PUBLIC], ["127.0.0.1"]],
}


def network_serving_everything() -> FakeNetwork:
    """Every address, internal ones included, would answer with a valid tarball if connected to."""
    net = FakeNetwork()
    for answers in DNS.values():
        for answer in answers:
            for address in [answer] if isinstance(answer, str) else answer:
                net.sites[address] = serve(TARBALL)
    for address in ("127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "0.0.0.0", "::", PUBLIC):
        net.sites[address] = serve(TARBALL)
    return net


async def fetch(
    url: str,
    policy: ArchivePolicy | None = None,
    *,
    net: FakeNetwork | None = None,
    resolver: FakeResolver | None = None,
    sha256: str | None = None,
) -> DownloadedArchive:
    policy = policy or ArchivePolicy()
    net = net if net is not None else network_serving_everything()
    resolver = resolver or FakeResolver(dict(DNS))
    async with guarded_client(policy, resolver=resolver, network=net) as http:
        return await download_archive(http, url, policy=policy, sha256=sha256, max_bytes=10**6, timeout=5)


async def assert_refused(
    url: str, policy: ArchivePolicy | None = None, *, net: FakeNetwork | None = None, **kwargs: object
) -> FakeNetwork:
    policy = policy or ArchivePolicy()
    net = net if net is not None else network_serving_everything()
    with pytest.raises(ExpoUserError) as caught:
        await fetch(url, policy, net=net, **kwargs)  # type: ignore[arg-type]
    assert caught.value.error_code == SOURCE_NOT_ALLOWED_CODE
    assert caught.value.message == policy.refusal_message
    return net


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


HOSTILE = [
    # loopback, every spelling
    "https://127.0.0.1/x.tar.gz",
    "https://127.0.0.2:8443/x.tar.gz",
    "https://[::1]/x.tar.gz",
    "https://[::ffff:127.0.0.1]/x.tar.gz",  # IPv4-mapped IPv6
    "https://[::ffff:7f00:1]/x.tar.gz",
    "https://[0:0:0:0:0:ffff:7f00:1]/x.tar.gz",
    "https://[::127.0.0.1]/x.tar.gz",  # IPv4-compatible (deprecated)
    "https://2130706433/x.tar.gz",  # decimal
    "https://0x7f000001/x.tar.gz",  # hex
    "https://0177.0.0.1/x.tar.gz",  # octal
    "https://0x7f.0.0.1/x.tar.gz",
    "https://127.1/x.tar.gz",  # short form
    "https://127.0.0.1./x.tar.gz",
    "https://%31%32%37.0.0.1/x.tar.gz",  # percent-encoded
    "https://loop.example/x.tar.gz",
    "https://loop.example./x.tar.gz",  # trailing dot
    "https://LOCALHOST/x.tar.gz",
    "https://127.0.0.1.nip.io/x.tar.gz",
    "https://mapped.example/x.tar.gz",  # a name answering ::ffff:127.0.0.1
    # userinfo tricks
    "https://public.example@127.0.0.1/x.tar.gz",
    "https://public.example%40evil@127.0.0.1/x.tar.gz",
    "https://user:hunter2@public.example/x.tar.gz",  # credentials in the URL: refused, never echoed
    # link-local and cloud metadata
    "https://169.254.169.254/latest/meta-data/",
    "https://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "https://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 of 169.254.169.254
    "https://[fd00:ec2::254]/latest/meta-data/",  # AWS IMDS over IPv6 (unique-local)
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://nat64.example/x.tar.gz",
    "https://[fe80::1]/x.tar.gz",
    "https://[fe80::1%25eth0]/x.tar.gz",  # zone id
    "https://linklocal6.example/x.tar.gz",
    "https://scoped6.example/x.tar.gz",
    # private, shared, unique-local, site-local
    "https://10.0.0.1/x.tar.gz",
    "https://172.16.0.1/x.tar.gz",
    "https://192.168.1.1/x.tar.gz",
    "https://100.64.0.1/x.tar.gz",
    "https://[fd12:3456::1]/x.tar.gz",
    "https://[fec0::1]/x.tar.gz",
    "https://internal.example/x.tar.gz",
    "https://kubernetes.default.svc/api/v1/namespaces/default/secrets",
    "https://cgnat.example/x.tar.gz",
    "https://ula.example/x.tar.gz",
    # unspecified, multicast, broadcast, reserved, special-purpose
    "https://0.0.0.0/x.tar.gz",
    "https://0/x.tar.gz",
    "https://[::]/x.tar.gz",
    "https://zero.example/x.tar.gz",
    "https://224.0.0.1/x.tar.gz",
    "https://[ff02::1]/x.tar.gz",
    "https://multicast.example/x.tar.gz",
    "https://255.255.255.255/x.tar.gz",
    "https://240.0.0.1/x.tar.gz",
    "https://192.0.0.8/x.tar.gz",
    "https://198.18.0.1/x.tar.gz",
    "https://192.0.2.1/x.tar.gz",
    "https://[2001:db8::1]/x.tar.gz",
    "https://[2002:7f00:1::1]/x.tar.gz",  # 6to4 of 127.0.0.1
    "https://sixtofour.example/x.tar.gz",
    # one bad address among good ones
    "https://mixed.example/x.tar.gz",
    "https://mixed6.example/x.tar.gz",
    # names that do not resolve, or to nothing usable: the same message (no oracle for internal names)
    "https://no-such-service.default.svc/x.tar.gz",
    "https://empty.example/x.tar.gz",
    "https://garbage.example/x.tar.gz",
    # https is required by default
    "http://public.example/x.tar.gz",
    "http://93.184.215.14/x.tar.gz",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_url_is_refused_without_connecting(url: str) -> None:
    net = await assert_refused(url)
    assert net.connects == []
    assert net.requests == []


async def test_refusal_never_echoes_the_url_or_its_password() -> None:
    policy = ArchivePolicy()
    for url in ("https://user:hunter2@public.example/x.tar.gz", "https://u:hunter2@10.0.0.1/x.tar.gz"):
        with pytest.raises(ExpoUserError) as caught:
            await fetch(url, policy)
        assert "hunter2" not in str(caught.value) and "hunter2" not in repr(caught.value)
        assert "public.example" not in str(caught.value) and "10.0.0.1" not in str(caught.value)


async def test_the_message_names_the_policy_and_the_setting() -> None:
    message = ArchivePolicy().refusal_message
    assert "archive source policy" in message
    assert "PUBLISHING_ARCHIVE_ALLOWED_HOSTS" in message
    assert "https" in message
    assert "https" not in ArchivePolicy(require_https=False).refusal_message


async def test_status_is_no_oracle_whatever_the_internal_address_would_answer() -> None:
    """A tarball, a 404 and a closed port inside the cluster all give the same message."""
    net = FakeNetwork(
        sites={
            "10.0.0.1": serve(TARBALL),
            "10.0.0.2": lambda request: response(404, b"not found"),
        }
    )
    messages = set()
    for url in ("https://10.0.0.1/a.tar.gz", "https://10.0.0.2/a.tar.gz", "https://10.0.0.3/a.tar.gz"):
        with pytest.raises(ExpoUserError) as caught:
            await fetch(url, net=net)
        messages.add(str(caught.value))
    assert len(messages) == 1
    assert net.connects == []


ALLOWED = [
    ("https://public.example/x.tar.gz", (PUBLIC, 443)),
    ("https://PUBLIC.EXAMPLE./x.tar.gz", (PUBLIC, 443)),
    ("https://public.example:8443/x.tar.gz", (PUBLIC, 8443)),
    ("https://v6.example/x.tar.gz", (PUBLIC_6, 443)),
    ("https://93.184.215.14/x.tar.gz", (PUBLIC, 443)),
    ("https://[2606:4700::6810:84e5]/x.tar.gz", (PUBLIC_6, 443)),
    ("https://[::ffff:93.184.215.14]/x.tar.gz", (PUBLIC, 443)),  # mapped: the IPv4 address
    ("https://bücher.example/x.tar.gz", (PUBLIC, 443)),  # IDNA, looked up as xn--bcher-kva.example
]


@pytest.mark.parametrize(("url", "connected"), ALLOWED)
async def test_public_destination_is_allowed_and_connected_by_checked_ip(
    url: str, connected: tuple[str, int]
) -> None:
    net = network_serving_everything()
    archive = await fetch(url, net=net)
    archive.close()
    assert archive.sha256 == hashlib.sha256(TARBALL).hexdigest()
    assert net.connects == [connected]


ALLOW_LIST_CASES = [
    # (allow-list, url, allowed?)
    ("127.0.0.1:8080", "http://127.0.0.1:8080/x.tar.gz", True),  # listed: http too
    ("127.0.0.1:8080", "http://[::ffff:127.0.0.1]:8080/x.tar.gz", True),  # same address, mapped
    ("127.0.0.1:8080", "http://127.0.0.1:8081/x.tar.gz", False),  # another port
    ("127.0.0.1:8080", "http://localhost:8080/x.tar.gz", False),  # names are matched as names
    ("127.0.0.1:8080", "https://10.0.0.5:8080/x.tar.gz", False),
    ("localhost", "http://localhost:9000/x.tar.gz", True),
    ("localhost", "http://LOCALHOST.:9000/x.tar.gz", True),
    ("localhost", "http://127.0.0.1:9000/x.tar.gz", False),
    ("artifacts.corp", "http://artifacts.corp/x.tar.gz", True),
    ("artifacts.corp", "https://internal.example/x.tar.gz", False),
    ("10.0.0.0/8", "https://internal.example/x.tar.gz", True),  # resolves into the CIDR
    ("10.0.0.0/8", "http://internal.example/x.tar.gz", False),  # http: only for listed hosts as written
    ("10.0.0.0/8", "http://10.0.0.5/x.tar.gz", True),
    ("10.0.0.0/8", "https://mixed.example/x.tar.gz", True),  # one public, one in the CIDR
    ("10.0.0.0/8", "https://kubernetes.default.svc/x.tar.gz", True),
    ("10.0.0.0/8", "https://loop.example/x.tar.gz", False),
    ("0.0.0.0/0,::/0", "https://0.0.0.0/x.tar.gz", False),  # unspecified: never a destination
    ("0.0.0.0/0,::/0", "https://zero.example/x.tar.gz", False),
    ("0.0.0.0/0,::/0", "https://224.0.0.1/x.tar.gz", False),  # multicast: never a destination
    ("0.0.0.0/0,::/0", "https://169.254.169.254/x.tar.gz", True),  # the admin opened everything
]


@pytest.mark.parametrize(("allowed", "url", "ok"), ALLOW_LIST_CASES)
async def test_allow_list(allowed: str, url: str, ok: bool) -> None:
    policy = ArchivePolicy(allowed=parse_allow_list(allowed))
    if ok:
        (await fetch(url, policy)).close()
    else:
        net = await assert_refused(url, policy)
        assert net.connects == []


async def test_http_anywhere_public_when_https_is_not_required() -> None:
    policy = ArchivePolicy(require_https=False)
    (await fetch("http://public.example/x.tar.gz", policy)).close()
    net = await assert_refused("http://127.0.0.1/x.tar.gz", policy)
    assert net.connects == []


# -- redirects -----------------------------------------------------------------------------------


def redirect(location: str, status: int = 302) -> bytes:
    return response(status, location=location)


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://internal.example/x.tar.gz",
        "https://[::ffff:10.0.0.1]/x.tar.gz",
        "https://127.1/x.tar.gz",
        "https://user:pw@public2.example/x.tar.gz",
        "http://public2.example/x.tar.gz",  # a downgrade to http
    ],
)
async def test_redirect_from_public_to_refused_destination_is_refused(location: str) -> None:
    net = network_serving_everything()
    net.sites[PUBLIC] = lambda request: redirect(location)
    await assert_refused("https://public.example/start", net=net)
    assert net.connects == [(PUBLIC, 443)]  # the inner address was never connected to


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_followed_and_each_hop_checked(status: int) -> None:
    def origin(request: SeenRequest) -> bytes:
        return redirect("/second" if request.path == "/a" else "https://public2.example/b", status)

    net = FakeNetwork(sites={PUBLIC: origin, PUBLIC_2: serve(TARBALL)})
    (await fetch("https://public.example/a", net=net)).close()
    assert [(r.ip, r.path) for r in net.requests] == [(PUBLIC, "/a"), (PUBLIC, "/second"), (PUBLIC_2, "/b")]


async def test_too_many_redirects() -> None:
    net = FakeNetwork(sites={PUBLIC: lambda request: redirect("/again")})
    with pytest.raises(ExpoUserError, match=f"redirects more than {MAX_REDIRECTS} times"):
        await fetch("https://public.example/a", net=net)
    assert len(net.requests) == MAX_REDIRECTS + 1


async def test_no_cookie_credentials_or_token_travel_across_redirects() -> None:
    def origin(request: SeenRequest) -> bytes:
        if request.path == "/a":
            return response(302, location="/b.tar.gz", set_cookie="session=abc; Path=/")
        return response(200, TARBALL)

    net = FakeNetwork(sites={PUBLIC: origin})
    (await fetch("https://public.example/a", net=net)).close()
    assert [r.path for r in net.requests] == ["/a", "/b.tar.gz"]
    for request in net.requests:
        assert "cookie" not in request.headers
        assert "authorization" not in request.headers
        assert request.headers["user-agent"].startswith("publishing-operator/")


# -- the connection actually made -------------------------------------------------------------


async def test_dns_rebinding_between_connections_is_refused_at_connect() -> None:
    """rebind.example answers a public address, then 127.0.0.1: the second connection is refused."""
    resolver = FakeResolver(dict(DNS))
    net = network_serving_everything()
    net.sites[PUBLIC] = lambda request: redirect("/second")  # the next hop opens a new connection
    await assert_refused("https://rebind.example/first", net=net, resolver=resolver)
    assert resolver.lookups == ["rebind.example", "rebind.example"]
    assert net.connects == [(PUBLIC, 443)]  # never 127.0.0.1


async def test_each_connection_resolves_once_and_connects_to_an_address_it_checked() -> None:
    resolver = FakeResolver(dict(DNS))
    net = network_serving_everything()
    (await fetch("https://public.example/x.tar.gz", net=net, resolver=resolver)).close()
    assert resolver.lookups == ["public.example"]
    assert all(is_ip(host) for host, _ in net.connects)
    (request,) = net.requests
    assert request.headers["host"] == "public.example"  # HTTP and TLS still speak the URL's name
    assert request.tls_server_name == "public.example"


async def test_next_checked_address_is_tried_when_one_does_not_answer() -> None:
    net = FakeNetwork(sites={PUBLIC_2: serve(TARBALL)})
    (await fetch("https://two.example/x.tar.gz", net=net)).close()
    assert net.connects == [(PUBLIC, 443), (PUBLIC_2, 443)]


async def test_temporary_dns_failure_is_transient_not_a_refusal() -> None:
    resolver = FakeResolver(dict(DNS), error=socket.EAI_AGAIN)
    with pytest.raises(ExpoTransientError, match="ConnectError"):
        await fetch("https://public.example/x.tar.gz", resolver=resolver)


async def test_unix_sockets_are_refused() -> None:
    backend = GuardedBackend(ArchivePolicy(allowed=parse_allow_list("0.0.0.0/0")), network=FakeNetwork())
    with pytest.raises(DestinationRefused):
        await backend.connect_unix_socket("/var/run/docker.sock")


# -- sha256 --------------------------------------------------------------------------------------


async def test_sha256_can_be_required() -> None:
    policy = ArchivePolicy(require_sha256=True)
    net = network_serving_everything()
    with pytest.raises(ExpoUserError) as caught:
        await fetch("https://public.example/x.tar.gz", policy, net=net)
    assert caught.value.error_code == SOURCE_NOT_ALLOWED_CODE
    assert "PUBLISHING_ARCHIVE_REQUIRE_SHA256" in caught.value.message
    assert net.connects == []
    digest = hashlib.sha256(TARBALL).hexdigest()
    (await fetch("https://public.example/x.tar.gz", policy, sha256=digest)).close()
