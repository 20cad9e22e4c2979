"""access.py: which clients may use the proxy, with --allow-from and without."""

from __future__ import annotations

import pytest

from waylay.access import AccessList, parse_networks
from waylay.errors import ConfigError


@pytest.mark.parametrize(
    ("listen", "client", "allowed"),
    [
        # Listening on loopback: nobody else can reach it, so everyone reaching it may.
        ("127.0.0.1", "8.8.8.8", True),
        ("::1", "2001:4860::8888", True),
        ("localhost", "127.0.0.1", True),
        # Elsewhere: only addresses that are not globally reachable.
        ("*", "127.0.0.1", True),
        ("*", "::ffff:127.0.0.1", True),
        ("*", "10.1.2.3", True),
        ("*", "192.168.7.23", True),
        ("*", "198.18.1.2", True),
        ("*", "100.64.0.9", True),  # CGNAT: not global
        ("*", "fe80::1%eth0", True),
        ("*", "fd12:3456::1", True),
        ("*", "8.8.8.8", False),
        ("*", "::ffff:8.8.8.8", False),
        ("*", "2001:4860::8888", False),
        ("0.0.0.0", "1.1.1.1", False),
        ("*", "not an address", False),
    ],
)
def test_the_default_rule(listen: str, client: str, allowed: bool) -> None:
    assert AccessList.build((), listen).allows(client) is allowed


@pytest.mark.parametrize(
    ("networks", "client", "allowed"),
    [
        (["10.0.0.0/8"], "10.9.9.9", True),
        (["10.0.0.0/8"], "127.0.0.1", False),  # loopback is not special once a list is given
        (["10.0.0.0/8"], "::ffff:10.0.0.1", True),
        (["198.18.1.2"], "198.18.1.2", True),
        (["198.18.1.2"], "198.18.1.3", False),
        (["2001:2::/48"], "2001:2:0:1::2", True),
        (["2001:2::/48", "198.18.0.0/15"], "198.19.255.255", True),
        (["0.0.0.0/0"], "8.8.8.8", True),
        (["0.0.0.0/0"], "2001:4860::8888", False),
        (["::/0"], "2001:4860::8888", True),
        (["10.1.2.3/8"], "10.200.0.1", True),  # host bits are forgiven
    ],
)
def test_allow_from(networks: list[str], client: str, allowed: bool) -> None:
    assert AccessList.build(parse_networks(networks), "127.0.0.1").allows(client) is allowed


@pytest.mark.parametrize("text", ["10.0.0.0/33", "localhost", "", "10.0.0.0/8,10.1.0.0/16"])
def test_a_bad_network_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--allow-from"):
        parse_networks([text])


def test_describe_says_the_rule() -> None:
    assert "not globally reachable" in AccessList.build((), "*").describe()
    assert AccessList.build(parse_networks(["10.0.0.0/8"]), "*").describe() == (
        "--allow-from 10.0.0.0/8"
    )
