"""The archive source policy's building blocks: which addresses are public, host spellings, the
allow-list syntax, and the connect-time guard on its own (without the URL check in front of it)."""

from __future__ import annotations

import ipaddress

import pytest

from publishing_operator.egress import (
    AllowEntry,
    ArchivePolicy,
    DestinationRefused,
    is_public,
    parse_allow_list,
    parse_host,
)
from publishing_operator.guarded_http import GuardedBackend, guarded_client
from tests.fixtures.egress import FakeNetwork, FakeResolver, serve

NOT_PUBLIC = [
    "0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.255.255.254",
    "169.254.169.254", "172.16.0.1", "172.31.255.254", "192.0.0.8", "192.0.2.1", "192.88.99.1",
    "192.168.0.1", "198.18.0.1", "198.51.100.1", "203.0.113.1", "224.0.0.1", "239.255.255.250",
    "240.0.0.1", "255.255.255.255",
    "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "100::1", "2001::1", "2001:db8::1",
    "2002:7f00:1::1", "2002:808:808::1", "3fff::1", "5f00::1", "fc00::1", "fd00:ec2::254", "fe80::1",
    "fe80::1%eth0", "fec0::1", "ff02::1", "ff0e::1",
]  # fmt: skip
PUBLIC = [
    "1.1.1.1", "8.8.8.8", "93.184.215.14", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.0.3.1",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2606:4700::1111", "2a00:1450:4001::200e",
]  # fmt: skip


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("my_service.ns.svc", "my_service.ns.svc"),
        ("127.0.0.1", ipaddress.ip_address("127.0.0.1")),
        ("[::1]", ipaddress.ip_address("::1")),
        ("::ffff:127.0.0.1", ipaddress.ip_address("::ffff:127.0.0.1")),
    ],
)
def test_host_spellings_are_normalised(raw: str, expected: object) -> None:
    assert parse_host(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "127.1", "2130706433", "0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "1.2.3.4.5", "foo.123", "0",
        "127.0.0.1..", "", ".", "a..b", "fe80::1%eth0", "fe80::1%25eth0", "%31%32%37.0.0.1",
        "exa mple.com", "-bad.example", "a" * 64 + ".example",
    ],
)  # fmt: skip
def test_ambiguous_host_spellings_are_refused(raw: str) -> None:
    with pytest.raises(DestinationRefused):
        parse_host(raw)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Artifacts.Corp.", "artifacts.corp"),
        ("artifacts.corp:8443", "artifacts.corp:8443"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[::1]:8080", "[::1]:8080"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("fd00::/8", "fd00::/8"),
    ],
)
def test_allow_entries_parse_to_a_canonical_spelling(text: str, canonical: str) -> None:
    assert str(AllowEntry.parse(text)) == canonical
    assert AllowEntry.parse(canonical) == AllowEntry.parse(text)


@pytest.mark.parametrize(
    "text",
    ["127.1", "0x7f.1:80", "10.0.0.0/8:80", "10.0.0.0/33", "host:0", "host:65536", "host:", "host:x",
     "[::1", "[::1]x", "http://artifacts.corp", "a b", "*.corp"],
)  # fmt: skip
def test_bad_allow_entries_are_named(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("[", r"\[").replace("*", r"\*")):
        AllowEntry.parse(text)


def test_allow_list_skips_blanks() -> None:
    assert [str(e) for e in parse_allow_list(" a.corp , ,10.0.0.0/8,")] == ["a.corp", "10.0.0.0/8"]


# -- the connect-time guard alone: whatever reaches the transport is checked --------------------


@pytest.mark.parametrize(
    ("host", "answers"),
    [
        ("127.0.0.1", None),
        ("::ffff:127.0.0.1", None),
        ("169.254.169.254", None),
        ("127.1", None),
        ("internal.example", ["10.0.0.5"]),
        ("mixed.example", ["93.184.215.14", "10.0.0.5"]),
        ("mapped.example", ["::ffff:169.254.169.254"]),
        ("gone.example", []),
    ],
)
async def test_connect_tcp_refuses_before_connecting(host: str, answers: list[str] | None) -> None:
    net = FakeNetwork()
    resolver = FakeResolver({host: answers} if answers is not None else {})
    backend = GuardedBackend(ArchivePolicy(), resolver=resolver, network=net)
    with pytest.raises(DestinationRefused):
        await backend.connect_tcp(host, 443)
    assert net.connects == []
    if answers is None:
        assert resolver.lookups == []  # literals are never looked up


async def test_the_transport_refuses_even_without_the_url_check() -> None:
    net = FakeNetwork(sites={"10.0.0.5": serve(b"secret")})
    resolver = FakeResolver({"internal.example": ["10.0.0.5"]})
    async with guarded_client(ArchivePolicy(require_https=False), resolver=resolver, network=net) as http:
        with pytest.raises(DestinationRefused):
            await http.get("http://internal.example/")
        with pytest.raises(DestinationRefused):
            await http.get("http://127.0.0.1:8080/")
    assert net.connects == []
