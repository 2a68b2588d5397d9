"""Where the operator may fetch a tenant's URL (archive sources): DESIGN.md section 3, "Tenant input".

Whoever may create a PublishingBuild must not extend their reach through the operator's network
position. By default an archive URL must be https and lead only to public (globally routed) unicast
addresses; an allow-list (hosts, `host:port`, IP addresses or CIDRs) admits internal destinations.

The decision is made twice and the second one is the one that counts:
- on the URL of every hop (`check_url`): scheme, https, userinfo, ambiguous host spellings;
- on every address the host resolves to, at connect time (`check_addresses`, called by
  `guarded_http`), so the connection goes to an address that was checked: no window for DNS
  rebinding between the check and the connect.

Every refusal raises `DestinationRefused`, whose `detail` is for the operator's log only: users get
`ArchivePolicy.refusal_message`, one text per policy whatever the destination would have answered.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOWED_HOSTS_SETTING = "PUBLISHING_ARCHIVE_ALLOWED_HOSTS"
REQUIRE_HTTPS_SETTING = "PUBLISHING_ARCHIVE_REQUIRE_HTTPS"
REQUIRE_SHA256_SETTING = "PUBLISHING_ARCHIVE_REQUIRE_SHA256"

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# inet_aton() reads "127.1", "2130706433", "0x7f.1" and "0177.0.0.1" as IPv4 addresses; no DNS
# top-level label is numeric, so a host whose last label looks like a number is such a spelling.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the translator connects to the embedded IPv4
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")  # RFC 4291: all routed IPv6 unicast lives here
# Not globally reachable per the IANA special-purpose registries, but `is_global` says it is on the
# Python versions we support (3.11's tables predate the 2024 update; 3.13 agrees with these).
_NOT_PUBLIC: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "192.0.0.0/24",  # IETF protocol assignments (IANA IPv4 special-purpose registry)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast (RFC 7526)
        "2001::/23",  # IETF protocol assignments, Teredo 2001::/32 included (IANA IPv6 registry)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4, deprecated (RFC 7526); embeds an IPv4 address
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
    )
)


class DestinationRefused(Exception):
    """The policy refuses a destination. `detail` names host and address: for the operator log only."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def effective(ip: IPAddress) -> IPAddress:
    """The address a connection really reaches: `::ffff:a.b.c.d` is the IPv4 address a.b.c.d."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public(ip: IPAddress) -> bool:
    """A globally routed unicast address: not loopback, link-local, private, unique-local, shared,
    unspecified, multicast, reserved, documentation, or an IPv4 address hidden in an IPv6 one."""
    ip = effective(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64:
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip not in _GLOBAL_UNICAST_V6 or ip.is_site_local:
            return False
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or ip.is_loopback or ip.is_link_local:
        return False
    if ip.is_private or not ip.is_global:
        return False
    return not any(ip in net for net in _NOT_PUBLIC if net.version == ip.version)


def parse_host(raw: str) -> IPAddress | str:
    """A URL's host as the connection sees it: an IP address, or a DNS name (lowercase, without the
    trailing dot). Spellings that resolvers read differently from how they look are refused."""
    host = raw.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "%" in host:
        raise DestinationRefused(f"host {raw!r} has a zone id or percent-encoding")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise DestinationRefused(f"host {raw!r} is not a valid DNS name or IP address")
    if _NUMERIC_LABEL.match(labels[-1]):
        raise DestinationRefused(f"host {raw!r} is a non-standard spelling of an IPv4 address")
    return name


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: a DNS name or an IP network (a single address is a /32 or /128), and
    optionally one port (`host:port`, `[v6]:port`, `a.b.c.d:port`)."""

    name: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        spec = text.strip().lower()
        if not spec:
            raise ValueError("empty entry")
        if "/" in spec:
            if "://" in spec:
                raise ValueError(f"{text!r} is a URL; give the host (or host:port) only")
            try:
                return cls(network=ipaddress.ip_network(spec, strict=False))
            except ValueError:
                raise ValueError(f"{text!r} is not a valid CIDR (e.g. 10.0.0.0/8, without port)") from None
        host, port = spec, None
        if spec.startswith("["):
            host, sep, rest = spec[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"{text!r}: expected [IPv6] or [IPv6]:port")
            port = rest[1:] if rest else None
        elif spec.count(":") == 1:
            host, port = spec.split(":")
        parsed_port = _parse_port(port, text) if port is not None else None
        try:
            target = parse_host(host)
        except DestinationRefused:
            raise ValueError(f"{text!r} is not a host name, IP address or CIDR") from None
        if isinstance(target, str):
            return cls(name=target, port=parsed_port)
        target = effective(target)
        return cls(network=ipaddress.ip_network(target), port=parsed_port)

    def __str__(self) -> str:
        if self.name is not None:
            host = self.name
        else:
            assert self.network is not None
            single = self.network.num_addresses == 1
            host = str(self.network.network_address) if single else str(self.network)
            if single and self.network.version == 6 and self.port is not None:
                host = f"[{host}]"
        return host if self.port is None else f"{host}:{self.port}"

    def admits_name(self, name: str, port: int) -> bool:
        return self.name is not None and self.name == name and self.port in (None, port)

    def admits_address(self, ip: IPAddress, port: int) -> bool:
        if self.network is None or self.port not in (None, port):
            return False
        ip = effective(ip)
        return ip.version == self.network.version and ip in self.network


def _parse_port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: the port must be 1-65535")
    return int(text)


def parse_allow_list(text: str | Iterable[str]) -> tuple[AllowEntry, ...]:
    """Comma-separated entries (or an iterable of entries); ValueError names the bad one."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    return tuple(AllowEntry.parse(part) for part in parts if part.strip())


@dataclass(frozen=True)
class ArchivePolicy:
    """What archive URLs the operator may fetch. The defaults are the secure ones."""

    allowed: tuple[AllowEntry, ...] = ()
    require_https: bool = True
    require_sha256: bool = False

    @property
    def refusal_message(self) -> str:
        """The one message a user sees for any refused destination (so status is no oracle)."""
        https = "be https, " if self.require_https else ""
        return (
            "spec.source.archive.url is refused by the operator's archive source policy: the URL must "
            f"{https}carry no user:password@ and lead, on every redirect, only to public internet "
            "addresses; an operator admin can allow an internal host with the setting "
            f"{ALLOWED_HOSTS_SETTING}"
        )

    @property
    def sha256_required_message(self) -> str:
        return (
            "spec.source.archive.sha256 is required by the operator's archive source policy "
            f"(setting {REQUIRE_SHA256_SETTING}); add the archive's SHA-256 to the spec"
        )

    def _admits_host(self, host: IPAddress | str, port: int) -> bool:
        if isinstance(host, str):
            return any(entry.admits_name(host, port) for entry in self.allowed)
        return any(entry.admits_address(host, port) for entry in self.allowed)

    def check_url(self, url: httpx.URL) -> None:
        """Refuse a hop's URL for what the URL alone says (the addresses are checked at connect)."""
        if url.scheme not in DEFAULT_PORTS:
            raise DestinationRefused(f"scheme {url.scheme!r} is not http(s)")
        if url.userinfo:
            raise DestinationRefused("the URL carries user info (user:password@)")
        host = parse_host(url.raw_host.decode("ascii"))
        port = url.port or DEFAULT_PORTS[url.scheme]
        admitted = self._admits_host(host, port)
        if self.require_https and url.scheme != "https" and not admitted:
            raise DestinationRefused(f"plain http to {host} (https is required)")
        if not isinstance(host, str) and not admitted:
            self.check_addresses(host, port, [host])

    def admits_name(self, name: str, port: int) -> bool:
        """An allow-listed name: whatever it resolves to is admitted (unicast only)."""
        return self._admits_host(name, port)

    def check_addresses(self, host: IPAddress | str, port: int, addresses: Sequence[IPAddress]) -> None:
        """Every address the host resolved to must be admitted: one bad address refuses them all."""
        if not addresses:
            raise DestinationRefused(f"{host} resolves to no address")
        name_admitted = isinstance(host, str) and self.admits_name(host, port)
        for ip in addresses:
            reached = effective(ip)
            if reached.is_unspecified or reached.is_multicast:
                raise DestinationRefused(f"{host} resolves to {ip}, not a unicast address")
            if name_admitted or is_public(ip) or self._admits_host(ip, port):
                continue
            raise DestinationRefused(f"{host} resolves to {ip}, not a public address")
