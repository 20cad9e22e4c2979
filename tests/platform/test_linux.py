"""platform/linux.py: parsing a sockaddr (pure); what the kernel says of a direct connection."""

from __future__ import annotations

import socket
import struct

import pytest

from waylay.platform.linux import mapped_to_ipv4, original_destination, parse_sockaddr


def _sockaddr_in(host: str, port: int) -> bytes:
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host)


def _sockaddr_in6(host: str, port: int) -> bytes:
    return (
        struct.pack("=H", socket.AF_INET6)
        + struct.pack("!H", port)
        + b"\0" * 4  # flowinfo
        + socket.inet_pton(socket.AF_INET6, host)
        + b"\0" * 4  # scope id
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_sockaddr_in("198.18.2.2", 443) + b"\0" * 8, ("198.18.2.2", 443)),
        (_sockaddr_in("0.0.0.0", 0) + b"\0" * 8, ("0.0.0.0", 0)),
        (_sockaddr_in("255.255.255.255", 65535), ("255.255.255.255", 65535)),
        (_sockaddr_in6("2001:2:0:2::2", 8443), ("2001:2:0:2::2", 8443)),
        (_sockaddr_in6("::ffff:198.18.0.1", 80), ("::ffff:198.18.0.1", 80)),
    ],
)
def test_parse_sockaddr(raw: bytes, expected: tuple[str, int]) -> None:
    assert parse_sockaddr(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x02\x00",
        _sockaddr_in("198.18.2.2", 443)[:7],  # the address cut short
        _sockaddr_in6("2001:2::1", 80)[:20],
        struct.pack("=H", socket.AF_UNIX) + b"\0" * 14,
    ],
)
def test_parse_sockaddr_rejects(raw: bytes) -> None:
    with pytest.raises(ValueError, match="sockaddr"):
        parse_sockaddr(raw)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("::ffff:198.18.0.1", "198.18.0.1"),
        ("198.18.0.1", "198.18.0.1"),
        ("2001:2::1", "2001:2::1"),
        ("::1", "::1"),
    ],
)
def test_mapped_to_ipv4(host: str, expected: str) -> None:
    assert mapped_to_ipv4(host) == expected


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_unredirected_connection_is_not_redirected(family: int, host: str) -> None:
    """A direct connection: no answer, or the listener's own address — never anything else."""
    with (
        socket.create_server((host, 0), family=family) as server,
        socket.create_connection(server.getsockname()[:2]),
    ):
        accepted, _ = server.accept()
        with accepted:
            answer = original_destination(accepted)
            assert answer is None or answer == accepted.getsockname()[:2]
