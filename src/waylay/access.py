"""Which clients may use the proxy: `--allow-from`, and the safe default without it.

Pure. An intercepting proxy reachable from the internet is an open relay that also decrypts
its users' traffic, so by default waylay serves every client only when it listens on
loopback (nobody else can reach it), and otherwise only clients whose address is not
globally reachable (`ipaddress`'s ``is_global`` is false: RFC 1918, loopback, link-local,
unique local IPv6, CGNAT, the benchmark range 198.18.0.0/15...). `--allow-from CIDR`
(repeatable) replaces the default with exactly the networks given; `0.0.0.0/0` and `::/0`
open it to everyone, on purpose.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from waylay.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_LOOPBACK_LISTEN = frozenset({"127.0.0.1", "::1", "localhost"})


def parse_networks(texts: tuple[str, ...] | list[str]) -> tuple[Network, ...]:
    """`--allow-from` values: an address or a CIDR network each; ConfigError names a bad one."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"--allow-from {text!r}: expected an address or a network (10.0.0.0/8, fd00::/8)"
            ) from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class AccessList:
    """The clients a proxy serves: everyone, the given networks, or the non-global default."""

    networks: tuple[Network, ...] | None  # None: the default rule
    everyone: bool = False

    @classmethod
    def build(cls, allow_from: tuple[Network, ...] | None, listen_host: str) -> AccessList:
        if allow_from:
            return cls(allow_from)
        return cls(None, everyone=listen_host in _LOOPBACK_LISTEN)

    def allows(self, host: str) -> bool:
        """Whether a client at ``host`` (as the socket reports it) may use the proxy."""
        if self.everyone:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.networks is None:
            return not address.is_global
        return any(address in network for network in self.networks)

    def describe(self) -> str:
        """What the rule is, for the log line of a refused client."""
        if self.networks is None:
            return "by default only addresses that are not globally reachable (--allow-from)"
        return "--allow-from " + ", ".join(str(network) for network in self.networks)
