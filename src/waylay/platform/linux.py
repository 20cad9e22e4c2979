"""Where a redirected connection was going: Linux's ``SO_ORIGINAL_DST``.

An iptables ``REDIRECT`` (or ``DNAT``) rewrites a connection's destination to waylay's
listening socket; netfilter's connection tracking remembers the original, and
``getsockopt(SOL_IP, SO_ORIGINAL_DST)`` (IPv4) or ``getsockopt(SOL_IPV6,
IP6T_SO_ORIGINAL_DST)`` (IPv6) hands it back as a ``sockaddr``. On a dual-stack socket an IPv4
client arrives as an IPv4-mapped IPv6 address, and its connection is tracked as IPv4: the
IPv4 level must be asked (the IPv6 one answers ENOENT).

For a connection that was not redirected the kernel answers either ENOENT (no tracking) or
the socket's own local address (tracked, never rewritten): both mean "not redirected".
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct

# linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h: both are 80.
SO_ORIGINAL_DST = 80
IP6T_SO_ORIGINAL_DST = 80
_SOL_IP = getattr(socket, "SOL_IP", 0)
_SOL_IPV6 = getattr(socket, "SOL_IPV6", 41)
_SOCKADDR_IN = 16  # family, port, address, padding
_SOCKADDR_IN6 = 28  # family, port, flowinfo, address, scope id


def parse_sockaddr(raw: bytes) -> tuple[str, int]:
    """A ``struct sockaddr_in`` or ``sockaddr_in6`` (as getsockopt returns it) as (host, port).

    Pure. The family is in host byte order, the port and address in network order.
    """
    if len(raw) < 4:
        raise ValueError(f"a sockaddr of {len(raw)} bytes is too short")
    (family,) = struct.unpack_from("=H", raw, 0)
    (port,) = struct.unpack_from("!H", raw, 2)
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    raise ValueError(f"a sockaddr of family {family} and {len(raw)} bytes is not IPv4 or IPv6")


def _is_ipv4_client(sock: socket.socket) -> bool:
    if sock.family == socket.AF_INET:
        return True
    host = sock.getpeername()[0]
    return ipaddress.IPv6Address(host.split("%", 1)[0]).ipv4_mapped is not None


def original_destination(sock: socket.socket) -> tuple[str, int] | None:
    """Where the client of ``sock`` was connecting before a redirect; None if it was not.

    An answer equal to the socket's own address is also a connection that was not
    redirected; the caller compares, as it knows all of its addresses.
    """
    try:
        if _is_ipv4_client(sock):
            raw = sock.getsockopt(_SOL_IP, SO_ORIGINAL_DST, _SOCKADDR_IN)
        else:
            raw = sock.getsockopt(_SOL_IPV6, IP6T_SO_ORIGINAL_DST, _SOCKADDR_IN6)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOPROTOOPT, errno.EOPNOTSUPP):
            return None
        raise
    return parse_sockaddr(raw)


def mapped_to_ipv4(host: str) -> str:
    """``::ffff:198.18.0.1`` → ``198.18.0.1``; any other address as it is."""
    try:
        mapped = ipaddress.IPv6Address(host).ipv4_mapped
    except ValueError:
        return host
    return str(mapped) if mapped is not None else host
