"""Which names a forged certificate must carry (MISSION.md points 3-5).

A client checks the name it asked for against the certificate's Subject Alternative Names
only (RFC 9525 §6.3 dropped the Common Name). So the forged leaf carries every name the real
server's certificate carries — its CN and each SAN entry, DNS names, wildcards and IP
addresses alike — plus the two names waylay itself knows the client may check: the SNI of the
ClientHello and the host of the CONNECT request (or of the original destination). An IP
literal becomes an IP SAN, a name a DNS SAN.

This module holds values only: no IO and no certificate parsing (that is `forge.py`). The
result, `CertNames`, is normalised — DNS names lowercased without their trailing dot, both
lists deduplicated in first-seen order — so equal sets of names compare and hash equal and
key the certificate cache. The SNI comes first, then the CONNECT host, then the upstream
names, so the first DNS name is the one the client asked for when it said one.

What a DNS SAN can hold is checked here and only here: a name with a space, an empty label or
a character outside letters, digits, `-` and `_` is dropped (it could only make signing fail
or put garbage in front of the client); a U-label is IDNA-encoded with the stdlib codec
(IDNA 2003) when that works and dropped when it does not. `*` is accepted as a whole leftmost
label, the only wildcard RFC 6125 §6.4.3 lets clients match.
"""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 5280 Appendix A: ub-common-name INTEGER ::= 64
MAX_COMMON_NAME = 64
# RFC 1035 §2.3.4: a label of 63 octets at most, a name of 255 on the wire (253 in text).
MAX_LABEL, MAX_NAME = 63, 253
# Letters, digits and hyphen (RFC 1123 §2.1), plus `_`, which real certificates carry.
_LABEL_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-_")


def dns_name(text: str) -> str | None:
    """`text` as a certificate's DNS name (lowercase A-labels, no trailing dot), or None."""
    name = text[:-1] if text.endswith(".") else text
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    name = name.lower()
    if not name or len(name) > MAX_NAME:
        return None
    labels = name.split(".")
    for index, label in enumerate(labels):
        if label == "*" and index == 0 and len(labels) > 1:
            continue
        if not 0 < len(label) <= MAX_LABEL or not _LABEL_CHARACTERS.issuperset(label):
            return None
    return name


def ip_literal(text: str) -> IPAddress | None:
    """An IPv4 or IPv6 literal (brackets and an IPv6 zone allowed), or None for anything else."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    return address


@dataclass(frozen=True, slots=True)
class CertNames:
    """The subject names of one forged certificate: a normalised, hashable cache key.

    `dns` and `ips` become the SubjectAltName; `common_name` the subject's CN, or no CN when
    None. The constructor normalises (see the module docstring) and raises ValueError for a
    DNS name no certificate can carry or a CN longer than 64 characters; `merge_names` drops
    such names instead.
    """

    common_name: str | None = None
    dns: tuple[str, ...] = ()
    ips: tuple[IPAddress, ...] = ()

    def __post_init__(self) -> None:
        if self.common_name is not None and not 0 < len(self.common_name) <= MAX_COMMON_NAME:
            raise ValueError(f"common name {self.common_name!r} is not 1-64 characters")
        normalised: dict[str, None] = {}
        for text in self.dns:
            name = dns_name(text)
            if name is None:
                raise ValueError(f"{text!r} cannot be a DNS name in a certificate")
            normalised[name] = None
        object.__setattr__(self, "dns", tuple(normalised))
        ips = dict.fromkeys(ipaddress.ip_address(address) for address in self.ips)
        object.__setattr__(self, "ips", tuple(ips))

    @property
    def first_name(self) -> str | None:
        """The first DNS name, else the first IP address.

        From `merge_names` that is the SNI, else the CONNECT host, else (a CONNECT to an IP
        without SNI) the upstream certificate's first DNS name.
        """
        if self.dns:
            return self.dns[0]
        return str(self.ips[0]) if self.ips else None


def merge_names(
    *,
    upstream_cn: str | None,
    upstream_dns: Iterable[str],
    upstream_ips: Iterable[IPAddress],
    sni: str | None,
    connect_host: str | None,
) -> CertNames:
    """The names of the forged leaf: SNI, CONNECT host, then the upstream CN and every SAN.

    The CN is the upstream's when it has one of 1-64 characters (copied as it is, even when
    it is no hostname), else the first of SNI, CONNECT host and DNS names that fits. Names
    that cannot be DNS SANs are dropped, never an error: one odd SAN upstream must not break
    interception of the names that are fine.
    """
    dns: dict[str, None] = {}
    ips: dict[IPAddress, None] = {}
    asked: list[str] = []  # the SNI and CONNECT host as they may appear in the CN

    def add(text: str) -> str | None:
        address = ip_literal(text)
        if address is not None:
            ips[address] = None
            return str(address)
        name = dns_name(text)
        if name is not None:
            dns[name] = None
        return name

    for text in (sni, connect_host):
        if text:
            added = add(text)
            if added is not None:
                asked.append(added)
    for text in upstream_dns:
        name = dns_name(text)
        if name is not None:
            dns[name] = None
    for address in upstream_ips:
        ips[ipaddress.ip_address(address)] = None
    if upstream_cn:
        add(upstream_cn)

    candidates = [upstream_cn, *asked, *dns]
    common_name = next((name for name in candidates if name and len(name) <= MAX_COMMON_NAME), None)
    return CertNames(common_name, tuple(dns), tuple(ips))
