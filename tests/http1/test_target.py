"""Request targets and their forms (RFC 9112 §3.2, RFC 9110 §4.2, RFC 3986 §3.2)."""

from __future__ import annotations

import pytest

from waylay.errors import ProtocolError
from waylay.http1.head import Target, parse_host, parse_target

VALID = [
    # RFC 9112 §3.2.1: origin-form
    pytest.param(b"GET", b"/", Target("origin", "", "", 0, b"/"), id="origin-root-3.2.1"),
    pytest.param(
        b"POST", b"/a/b?c=d&e", Target("origin", "", "", 0, b"/a/b?c=d&e"), id="origin-query-3.2.1"
    ),
    pytest.param(b"GET", b"//x", Target("origin", "", "", 0, b"//x"), id="origin-empty-segment"),
    # RFC 9112 §3.2.2: absolute-form, http and https only
    pytest.param(
        b"GET",
        b"http://Example.COM/p?q",
        Target("absolute", "http", "example.com", 80, b"/p?q"),
        id="absolute-host-lowercased-3.2.2",
    ),
    pytest.param(
        b"GET",
        b"HTTPS://example.com:8443",
        Target("absolute", "https", "example.com", 8443, b"/"),
        id="absolute-scheme-case-empty-path-3.2.2",
    ),
    pytest.param(
        b"GET",
        b"https://example.com",
        Target("absolute", "https", "example.com", 443, b"/"),
        id="absolute-https-default-port-3.2.2",
    ),
    pytest.param(
        b"GET",
        b"http://example.com?x=1",
        Target("absolute", "http", "example.com", 80, b"/?x=1"),
        id="absolute-query-without-path-3.2.1",
    ),
    pytest.param(
        b"GET",
        b"http://[2001:DB8::0:1]:8080/x",
        Target("absolute", "http", "2001:db8::1", 8080, b"/x"),
        id="absolute-ipv6-3.2.2",
    ),
    pytest.param(
        b"GET",
        b"http://192.0.2.1/",
        Target("absolute", "http", "192.0.2.1", 80, b"/"),
        id="absolute-ipv4-3.2.2",
    ),
    pytest.param(
        b"GET",
        b"http://under_score.example./",
        Target("absolute", "http", "under_score.example.", 80, b"/"),
        id="absolute-underscore-trailing-dot",
    ),
    pytest.param(
        b"GET",
        b"http://v1.example/",
        Target("absolute", "http", "v1.example", 80, b"/"),
        id="absolute-digits-in-name-not-last-label",
    ),
    # RFC 9112 §3.2.4: an OPTIONS to an absolute URI with an empty path is sent as "*"
    pytest.param(
        b"OPTIONS",
        b"http://example.com",
        Target("absolute", "http", "example.com", 80, b"*"),
        id="options-empty-path-becomes-asterisk-3.2.4",
    ),
    pytest.param(
        b"OPTIONS",
        b"http://example.com/",
        Target("absolute", "http", "example.com", 80, b"/"),
        id="options-root-path-kept-3.2.4",
    ),
    # RFC 9112 §3.2.3: authority-form for CONNECT
    pytest.param(
        b"CONNECT",
        b"Example.com:443",
        Target("authority", "", "example.com", 443, b""),
        id="connect-3.2.3",
    ),
    pytest.param(
        b"CONNECT",
        b"[::1]:8443",
        Target("authority", "", "::1", 8443, b""),
        id="connect-ipv6-3.2.3",
    ),
    pytest.param(
        b"CONNECT",
        b"10.0.0.1:1",
        Target("authority", "", "10.0.0.1", 1, b""),
        id="connect-ipv4-lowest-port-3.2.3",
    ),
    pytest.param(
        b"CONNECT",
        b"a:65535",
        Target("authority", "", "a", 65535, b""),
        id="connect-highest-port-3.2.3",
    ),
    # RFC 9112 §3.2.4: asterisk-form for OPTIONS
    pytest.param(b"OPTIONS", b"*", Target("asterisk", "", "", 0, b"*"), id="asterisk-3.2.4"),
]


@pytest.mark.parametrize(("method", "target", "expected"), VALID)
def test_valid_target(method: bytes, target: bytes, expected: Target) -> None:
    assert parse_target(method, target) == expected


INVALID = [
    # RFC 9112 §3.2.3: CONNECT needs host:port, port 1-65535; authority-form is CONNECT's only
    pytest.param(b"CONNECT", b"example.com", id="connect-no-port-3.2.3"),
    pytest.param(b"CONNECT", b"example.com:", id="connect-empty-port-3.2.3"),
    pytest.param(b"CONNECT", b"example.com:0", id="connect-port-zero-3.2.3"),
    pytest.param(b"CONNECT", b"example.com:65536", id="connect-port-too-big-3.2.3"),
    pytest.param(b"CONNECT", b"example.com:+443", id="connect-signed-port-3.2.3"),
    pytest.param(b"CONNECT", b"example.com:4 43", id="connect-space-in-port-3.2.3"),
    pytest.param(b"CONNECT", b"example.com:443:1", id="connect-two-ports-3.2.3"),
    pytest.param(b"CONNECT", b":443", id="connect-empty-host-3.2.3"),
    pytest.param(b"CONNECT", b"::1:443", id="connect-ipv6-without-brackets-3.2.3"),
    pytest.param(b"CONNECT", b"[::1]", id="connect-ipv6-no-port-3.2.3"),
    pytest.param(b"CONNECT", b"[::1]x:443", id="connect-junk-after-bracket-3.2.3"),
    pytest.param(b"CONNECT", b"[::g]:443", id="connect-bad-ipv6-3.2.3"),
    pytest.param(b"CONNECT", b"[fe80::1%25eth0]:443", id="connect-ipv6-zone-3.2.3"),
    pytest.param(b"CONNECT", b"[v1.x]:443", id="connect-ipvfuture-3.2.3"),
    pytest.param(b"CONNECT", b"user@example.com:443", id="connect-userinfo-3.2.3"),
    pytest.param(b"CONNECT", b"/", id="connect-origin-form-3.2.3"),
    pytest.param(b"CONNECT", b"http://example.com:443/", id="connect-absolute-form-3.2.3"),
    pytest.param(b"GET", b"example.com:443", id="authority-form-not-connect-3.2.3"),
    # RFC 9112 §3.2.4: asterisk only for OPTIONS
    pytest.param(b"GET", b"*", id="asterisk-not-options-3.2.4"),
    pytest.param(b"OPTIONS", b"**", id="double-asterisk-3.2.4"),
    # RFC 9112 §3.2.2, RFC 9110 §4.2: absolute-form, http(s) only
    pytest.param(b"GET", b"ftp://example.com/", id="other-scheme-4.2"),
    pytest.param(b"GET", b"ws://example.com/", id="ws-scheme-4.2"),
    pytest.param(b"GET", b"http:/example.com/", id="one-slash-4.2"),
    pytest.param(b"GET", b"http://", id="empty-authority-4.2.1"),
    pytest.param(b"GET", b"http:///path", id="empty-host-4.2.1"),
    pytest.param(b"GET", b"http://:80/", id="empty-host-with-port-4.2.1"),
    pytest.param(b"GET", b"http://user:pw@example.com/", id="userinfo-4.2.4"),
    pytest.param(b"GET", b"http://bank.example@evil.example/", id="userinfo-disguise-4.2.4"),
    pytest.param(b"GET", b"http://example.com/#frag", id="fragment-3.2"),
    pytest.param(b"GET", b"/path#frag", id="origin-fragment-3.2"),
    pytest.param(b"GET", b"http://example.com:/", id="empty-port-3.2.3-rfc3986"),
    pytest.param(b"GET", b"http://example.com:99999/", id="port-too-big-rfc3986"),
    pytest.param(b"GET", b"http://exa%6dple.com/", id="pct-encoded-host-rfc3986"),
    pytest.param(b"GET", b"http://exa!mple.com/", id="sub-delim-in-host-rfc3986"),
    pytest.param(b"GET", b"http://" + b"a" * 256 + b"/", id="host-too-long-rfc1035"),
    # Numeric hosts that resolvers read as IPv4 must be plain dotted quads
    pytest.param(b"GET", b"http://127.1/", id="short-ipv4"),
    pytest.param(b"GET", b"http://2130706433/", id="integer-ipv4"),
    pytest.param(b"GET", b"http://0x7f.0.0.1/", id="hex-ipv4"),
    pytest.param(b"GET", b"http://0x7f000001/", id="hex-integer-ipv4"),
    pytest.param(b"GET", b"http://127.0.0.01/", id="leading-zero-ipv4"),
    pytest.param(b"GET", b"http://256.0.0.1/", id="octet-too-big-ipv4"),
    pytest.param(b"GET", b"http://1.2.3.4./", id="ipv4-trailing-dot"),
    # RFC 9112 §3.2: visible ASCII only, not empty
    pytest.param(b"GET", b"", id="empty-3.2"),
    pytest.param(b"GET", b"/caf\xc3\xa9", id="non-ascii-3.2"),
    pytest.param(b"GET", b"/a b", id="space-3.2"),
    pytest.param(b"GET", b"/\x00", id="nul-3.2"),
    pytest.param(b"GET", b"path", id="relative-3.2"),
]


@pytest.mark.parametrize(("method", "target"), INVALID)
def test_invalid_target(method: bytes, target: bytes) -> None:
    with pytest.raises(ProtocolError) as error:
        parse_target(method, target)
    assert error.value.status == 400


HOSTS = [
    pytest.param(b"example.com", 80, ("example.com", 80), id="default-port"),
    pytest.param(b"EXAMPLE.com:8080", 443, ("example.com", 8080), id="explicit-port"),
    pytest.param(b"[2001:DB8:0:0::1]", 443, ("2001:db8::1", 443), id="ipv6-normalised"),
    pytest.param(b"192.0.2.1:0080", 80, ("192.0.2.1", 80), id="port-leading-zeros"),
]


@pytest.mark.parametrize(("value", "default_port", "expected"), HOSTS)
def test_parse_host(value: bytes, default_port: int, expected: tuple[str, int]) -> None:
    assert parse_host(value, default_port) == expected
