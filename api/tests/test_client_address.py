"""The client behind a request, through the proxies trusted (SUMSERVICE_TRUSTED_PROXIES)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from api.client_address import address_block, client_address


def address(peer: str, forwarded: str | None = None) -> str:
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return client_address(RequestFactory().get("/", REMOTE_ADDR=peer, **headers))


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert address("192.0.2.1", "198.51.100.9") == "192.0.2.1"


def test_through_trusted_proxies_the_first_untrusted_hop_from_the_right() -> None:
    # 10.0.0.9 was written by the client itself; 127.0.0.1 is a trusted proxy in the chain.
    assert address("127.0.0.1", "10.0.0.9, 198.51.100.7, 127.0.0.1") == "198.51.100.7"
    assert address("::1", "198.51.100.7") == "198.51.100.7"


def test_a_chain_of_trusted_proxies_only_ends_at_its_leftmost() -> None:
    assert address("127.0.0.1", "::1, 127.0.0.1") == "::1"


@pytest.mark.parametrize("peer", ["::ffff:127.0.0.1", "::FFFF:7f00:1"])
def test_an_ipv4_peer_on_a_dual_stack_socket_is_the_ipv4_address(peer: str) -> None:
    """Bound to `[::]`, gunicorn names an IPv4 peer `::ffff:a.b.c.d`: still the loopback proxy,
    trusted as such, and a client logged and limited as the IPv4 address it is."""
    assert address(peer, "198.51.100.9") == "198.51.100.9"
    assert address("::ffff:192.0.2.1", "198.51.100.9") == "192.0.2.1"
    assert address("127.0.0.1", "::ffff:198.51.100.9") == "198.51.100.9"


def test_trusted_networks_are_configurable(settings: Any) -> None:
    settings.SUMSERVICE = {**settings.SUMSERVICE, "TRUSTED_PROXIES": ["10.1.0.0/16"]}
    assert address("10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert address("::ffff:10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert address("127.0.0.1", "198.51.100.1") == "127.0.0.1"


def test_any_peer_is_trusted_with_a_star(settings: Any) -> None:
    settings.SUMSERVICE = {**settings.SUMSERVICE, "TRUSTED_PROXIES": ["*"]}
    assert address("192.0.2.1", "198.51.100.1") == "198.51.100.1"
    assert address("", "198.51.100.1") == "198.51.100.1"  # a unix socket's peer has no address


@pytest.mark.parametrize(
    ("hop", "client"),
    [
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("198.51.100.9:4711", "198.51.100.9"),
        ("64:ff9b::808:808", "8.8.8.8"),  # through a NAT64 gateway (RFC 6052)
        ("64:ff9b::7f00:1", "64:ff9b::7f00:1"),  # not a global address: not so mapped
        ("not an address", "not an address"),
    ],
)
def test_a_forwarded_address_is_read_in_one_spelling(hop: str, client: str) -> None:
    """Some proxies write the client's port, or brackets, beside its address: a client is one
    client (one budget, one spelling in the log) however its address was written."""
    assert address("127.0.0.1", hop) == client


@pytest.mark.parametrize(
    ("client", "block"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("198.51.100.9", "198.51.100.9"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_client_holds_its_whole_64(client: str, block: str) -> None:
    assert address_block(client) == block


def test_a_proxy_trusted_by_its_nat64_address_stays_trusted(settings: Any) -> None:
    """Its peer is read as the IPv4 address it stands for: trusted by either name."""
    settings.SUMSERVICE = {**settings.SUMSERVICE, "TRUSTED_PROXIES": ["64:ff9b::808:808"]}
    assert address("64:ff9b::808:808", "203.0.113.5") == "203.0.113.5"


@pytest.mark.parametrize("entry", ["::ffff:10.0.0.5", "::ffff:10.0.0.0/104"])
@pytest.mark.parametrize("peer", ["10.0.0.5", "::ffff:10.0.0.5"])
def test_a_proxy_trusted_as_a_dual_stack_socket_names_it_is_trusted(
    settings: Any, entry: str, peer: str
) -> None:
    """An IPv4 proxy written as IPv4-mapped IPv6, as a dual-stack socket shows its address:
    its peers are read as IPv4, and the entry with them."""
    settings.SUMSERVICE = {**settings.SUMSERVICE, "TRUSTED_PROXIES": [entry]}
    assert address(peer, "203.0.113.5") == "203.0.113.5"
