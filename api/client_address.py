"""The address of the client behind a request, as seen through the proxies we trust.

gunicorn gives the peer that connected (REMOTE_ADDR). Behind nginx or an ingress that peer is
the proxy, and the client is named in X-Forwarded-For, where each proxy appends the address it
was connected from. Only the entries added by trusted proxies can be believed: reading the
header from the right, the first address that is not a trusted proxy is the client. Anything
to its left was written by the client itself and may be forged.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# RFC 6052's well-known prefix: IPv4 addresses, in its last 32 bits, as IPv6 ones.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IPv4-mapped addresses (RFC 4291 2.5.5.2): how a dual-stack socket names an IPv4 peer.
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[bool, tuple[Network, ...]]:
    """(any peer is trusted, the trusted networks), from SUMSERVICE["TRUSTED_PROXIES"]."""
    if "*" in entries:
        return True, ()
    networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]
    # A proxy named by its NAT64 or IPv4-mapped address is also the IPv4 address its peers are
    # read as (_plain).
    networks += [
        ipaddress.ip_network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
        for network in networks
        if network.version == 6 and (network.subnet_of(_NAT64) or network.subnet_of(_MAPPED))
    ]
    return False, tuple(networks)


def _plain(address: str) -> str:
    """An address in one spelling: IPv6 compressed and in lower case, an IPv4 address written
    as IPv6 (`::ffff:192.0.2.1`, as a dual-stack socket names an IPv4 peer; `64:ff9b::c000:201`,
    as a NAT64 gateway names one) as IPv4, without
    the port or brackets some proxies write around it (`192.0.2.1:4711`, `[2001:db8::1]:443`);
    any other text as it is."""
    text = address
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return address
    embedded = _nat64_embedded(ip)
    if embedded is not None:  # an IPv4 client through a NAT64 gateway (RFC 6052): that client
        return str(embedded)
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


@lru_cache(maxsize=256)
def address_block(address: str) -> str:
    """The addresses one client holds, as a rate limit counts them: an IPv6 address's /64 (a
    host is given a whole /64 and may use any address in it), an IPv4 address alone."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network((ip, 64), strict=False))
    return address


def _nat64_embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address a NAT64 address stands for, or None. RFC 6052 section 3.1: the
    well-known prefix carries global IPv4 addresses only (not loopback's, a private network's,
    which would then pass for a proxy trusted by that name)."""
    if ip.version != 6 or ip not in _NAT64:
        return None
    embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return embedded if embedded.is_global else None


def _is_trusted(address: str, trust_all: bool, networks: tuple[Network, ...]) -> bool:
    if trust_all:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: HttpRequest) -> str:
    return address_behind(
        request.META.get("REMOTE_ADDR") or "", request.META.get("HTTP_X_FORWARDED_FOR", "")
    )


def address_behind(peer: str, forwarded: str) -> str:
    """The client's address, from the peer that connected and the X-Forwarded-For it sent."""
    return _client_behind(peer, forwarded, tuple(settings.SUMSERVICE["TRUSTED_PROXIES"]))


# Clients come back with the same peer and header: parsing addresses once per pair is enough.
@lru_cache(maxsize=256)
def _client_behind(peer: str, forwarded: str, trusted: tuple[str, ...]) -> str:
    trust_all, networks = _trusted(trusted)
    peer = _plain(peer)
    if not _is_trusted(peer, trust_all, networks):
        return peer
    hops = [_plain(hop.strip()) for hop in forwarded.split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        address = hop
        if not _is_trusted(hop, trust_all, networks):
            break
    return address
