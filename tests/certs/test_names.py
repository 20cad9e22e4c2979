"""The names of a forged certificate (MISSION.md points 3-5): tables, then properties.

RFC 9525 §6.3: clients check the SAN only, so every name the client may check must be there —
the upstream CN and each SAN entry, the SNI, the CONNECT host — and an IP literal must be an
IP SAN (RFC 9525 §6.2.1 does not match an IP against a DNS name).
"""

from __future__ import annotations

import string
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waylay.certs.names import CertNames, IPAddress, dns_name, ip_literal, merge_names

V4 = IPv4Address("127.0.0.1")

# --- one name ----------------------------------------------------------------------------

DNS_NAMES = [
    ("example.test", "example.test"),
    ("Example.TEST", "example.test"),
    ("example.test.", "example.test"),  # one trailing dot: the same name, absolute
    ("*.cdn.example.test", "*.cdn.example.test"),  # RFC 6125 §6.4.3: whole leftmost label
    ("_dmarc.example.test", "_dmarc.example.test"),
    ("localhost", "localhost"),
    ("bücher.example", "xn--bcher-kva.example"),  # IDNA 2003 with the stdlib codec
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("a" * 63 + ".test", "a" * 63 + ".test"),
    ("", None),
    (".", None),
    ("example.test..", None),
    ("a..b", None),
    (".example.test", None),
    ("a b.test", None),
    ("exa\tmple.test", None),
    ("example.test:443", None),
    ("*", None),
    ("a.*.example.test", None),
    ("*.*.example.test", None),
    ("w*.example.test", None),
    ("a" * 64 + ".test", None),  # RFC 1035 §2.3.4: 63 octets a label
    (".".join(["a" * 50] * 5), None),  # over 253 characters
    ("ü" * 70 + ".test", None),  # IDNA cannot encode it: dropped, not an error
    ("exa\x00mple.test", None),
]


@pytest.mark.parametrize(("text", "expected"), DNS_NAMES)
def test_dns_name(text: str, expected: str | None) -> None:
    assert dns_name(text) == expected


IP_LITERALS = [
    ("127.0.0.1", V4),
    ("::1", IPv6Address("::1")),
    ("[::1]", IPv6Address("::1")),
    ("[2001:DB8::1]", IPv6Address("2001:db8::1")),
    ("fe80::1%eth0", IPv6Address("fe80::1")),  # the zone is the client's business
    ("example.test", None),
    ("127.0.0.1:443", None),
    ("[127.0.0.1", None),
    ("01.2.3.4", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), IP_LITERALS)
def test_ip_literal(text: str, expected: IPAddress | None) -> None:
    assert ip_literal(text) == expected


# --- CertNames ---------------------------------------------------------------------------


def test_cert_names_normalise_and_compare_equal() -> None:
    one = CertNames("x", ("A.Test.", "a.test", "b.test"), (V4, ip_address("127.0.0.1")))
    two = CertNames("x", ("a.test", "B.TEST"), (V4,))
    assert one.dns == ("a.test", "b.test")
    assert one.ips == (V4,)
    assert one == two
    assert len({one, two}) == 1


@pytest.mark.parametrize(
    ("common_name", "dns"),
    [("x" * 65, ()), ("", ()), (None, ("a b",)), (None, ("",))],
    ids=["long-cn", "empty-cn", "space", "empty-name"],
)
def test_cert_names_refuse_what_no_certificate_can_carry(
    common_name: str | None, dns: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        CertNames(common_name, dns)


@pytest.mark.parametrize(
    ("names", "first"),
    [
        (CertNames(None, ("a.test", "b.test"), (V4,)), "a.test"),
        (CertNames(None, (), (V4,)), "127.0.0.1"),
        (CertNames("cn"), None),
    ],
)
def test_first_name(names: CertNames, first: str | None) -> None:
    assert names.first_name == first


# --- merge_names -------------------------------------------------------------------------

WWW_CERT = {
    "upstream_cn": "www.example.test",
    "upstream_dns": ["www.example.test", "api.example.test", "*.cdn.example.test"],
    "upstream_ips": [V4],
}
NO_CERT: dict[str, object] = {"upstream_cn": None, "upstream_dns": [], "upstream_ips": []}
LONG = "a" * 60 + ".example.test"  # a valid name, too long for a CN

MERGES = [
    pytest.param(
        {**NO_CERT, "sni": None, "connect_host": "Example.TEST"},
        CertNames("example.test", ("example.test",)),
        id="connect-host-only",
    ),
    pytest.param(
        {**WWW_CERT, "sni": None, "connect_host": "127.0.0.1"},
        CertNames(
            "www.example.test",
            ("www.example.test", "api.example.test", "*.cdn.example.test"),
            (V4,),
        ),
        id="connect-to-ip-no-sni-copies-cn-and-every-san",
    ),
    pytest.param(
        {**WWW_CERT, "sni": "api.example.test", "connect_host": "127.0.0.1"},
        CertNames(
            "www.example.test",
            ("api.example.test", "www.example.test", "*.cdn.example.test"),
            (V4,),
        ),
        id="sni-first",
    ),
    pytest.param(
        {**WWW_CERT, "sni": "other.example.test", "connect_host": "proxy-target.test"},
        CertNames(
            "www.example.test",
            (
                "other.example.test",
                "proxy-target.test",
                "www.example.test",
                "api.example.test",
                "*.cdn.example.test",
            ),
            (V4,),
        ),
        id="sni-and-connect-host-the-server-does-not-cover",
    ),
    pytest.param(
        {**NO_CERT, "sni": None, "connect_host": "[::1]"},
        CertNames("::1", (), (IPv6Address("::1"),)),
        id="bracketed-v6-connect-host-is-an-ip-san",
    ),
    pytest.param(
        {**NO_CERT, "sni": "A.B.", "connect_host": "a.b"},
        CertNames("a.b", ("a.b",)),
        id="trailing-dot-and-case-are-one-name",
    ),
    pytest.param(
        {"upstream_cn": LONG, "upstream_dns": [], "upstream_ips": []}
        | {"sni": "short.test", "connect_host": None},
        CertNames("short.test", ("short.test", LONG)),
        id="long-cn-goes-to-san-not-cn",
    ),
    pytest.param(
        {"upstream_cn": "Acme Router", "upstream_dns": [], "upstream_ips": []}
        | {"sni": None, "connect_host": "10.0.0.1"},
        CertNames("Acme Router", (), (IPv4Address("10.0.0.1"),)),
        id="cn-that-is-no-hostname-is-copied-but-kept-out-of-san",
    ),
    pytest.param(
        {"upstream_cn": "*.Example.test", "upstream_dns": [], "upstream_ips": []}
        | {"sni": "www.example.test", "connect_host": "www.example.test"},
        CertNames("*.Example.test", ("www.example.test", "*.example.test")),
        id="wildcard-cn",
    ),
    pytest.param(
        {"upstream_cn": None, "upstream_dns": ["bücher.example", "a b", "", "x..y"]}
        | {"upstream_ips": [], "sni": None, "connect_host": "bücher.example"},
        CertNames("xn--bcher-kva.example", ("xn--bcher-kva.example",)),
        id="u-labels-encoded-garbage-dropped",
    ),
    pytest.param(
        {"upstream_cn": None, "upstream_dns": [], "upstream_ips": [IPv6Address("::1"), V4]}
        | {"sni": "127.0.0.1", "connect_host": "127.0.0.1"},
        CertNames("127.0.0.1", (), (V4, IPv6Address("::1"))),
        id="ip-sni-is-an-ip-san-and-ips-deduplicated",
    ),
    pytest.param(
        {"upstream_cn": LONG, "upstream_dns": [LONG], "upstream_ips": []}
        | {"sni": None, "connect_host": LONG},
        CertNames(None, (LONG,)),
        id="nothing-fits-a-cn",
    ),
    pytest.param(
        {**NO_CERT, "sni": "", "connect_host": "a b"},
        CertNames(),
        id="nothing-usable",
    ),
]


@pytest.mark.parametrize(("arguments", "expected"), MERGES)
def test_merge_names(arguments: dict[str, object], expected: CertNames) -> None:
    assert merge_names(**arguments) == expected  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
# What a client or server may send: case and a trailing dot vary, not the name.
spelled = st.builds(
    lambda name, upper, dot: (name.upper() if upper else name) + ("." if dot else ""),
    hostnames,
    st.booleans(),
    st.booleans(),
)
wildcards = hostnames.map(lambda name: f"*.{name}")
ips: st.SearchStrategy[IPAddress] = st.ip_addresses()
ip_texts = ips.map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip))
junk = st.text(alphabet=string.printable + "üé☃\x00", max_size=20)
upstream_names = st.lists(st.one_of(spelled, wildcards, junk), max_size=8)
hosts = st.one_of(spelled, ip_texts)


def _asked(text: str) -> tuple[str | None, IPAddress | None]:
    return dns_name(text), ip_literal(text)


@given(
    upstream_cn=st.none() | spelled | junk,
    upstream_dns=upstream_names,
    upstream_ips=st.lists(ips, max_size=4),
    sni=st.none() | hosts,
    connect_host=hosts,
)
def test_merge_properties(
    upstream_cn: str | None,
    upstream_dns: list[str],
    upstream_ips: list[IPAddress],
    sni: str | None,
    connect_host: str,
) -> None:
    merged = merge_names(
        upstream_cn=upstream_cn,
        upstream_dns=upstream_dns,
        upstream_ips=upstream_ips,
        sni=sni,
        connect_host=connect_host,
    )
    # The names the client may ask for are always there, as a DNS or an IP SAN.
    for text in filter(None, (sni, connect_host)):
        name, ip = _asked(text)
        assert (ip in merged.ips) if ip is not None else (name in merged.dns)
    # Every upstream SAN that a certificate can carry is copied, and every IP.
    for text in upstream_dns:
        name = dns_name(text)
        assert name is None or name in merged.dns
    assert set(upstream_ips) <= set(merged.ips)
    # Only names a certificate can carry; a CN of 64 characters at most.
    assert all(dns_name(name) == name for name in merged.dns)
    assert merged.common_name is None or 0 < len(merged.common_name) <= 64

    # Idempotent: merging the result again, alone or with the same SNI and host, changes nothing.
    def remerge(sni: str | None, connect_host: str | None) -> CertNames:
        return merge_names(
            upstream_cn=merged.common_name,
            upstream_dns=merged.dns,
            upstream_ips=merged.ips,
            sni=sni,
            connect_host=connect_host,
        )

    assert remerge(sni, connect_host) == merged
    assert remerge(None, None) == merged


@given(
    upstream_dns=st.lists(st.one_of(spelled, wildcards), max_size=8),
    sni=st.none() | spelled | st.just("10.1.1.1"),
)
def test_merge_is_order_stable(upstream_dns: list[str], sni: str | None) -> None:
    merged = merge_names(
        upstream_cn=None, upstream_dns=upstream_dns, upstream_ips=[], sni=sni, connect_host=None
    )
    asked = dns_name(sni) if sni and ip_literal(sni) is None else None
    upstream = [name for name in dict.fromkeys(map(dns_name, upstream_dns)) if name != asked]
    assert list(merged.dns) == ([asked] if asked else []) + upstream
    # The same input gives the same key: a cache hit.
    repeat = merge_names(
        upstream_cn=None, upstream_dns=upstream_dns, upstream_ips=[], sni=sni, connect_host=None
    )
    assert hash(repeat) == hash(merged)
