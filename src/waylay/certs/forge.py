"""Forging leaf certificates, and reading the names out of a real server's certificate.

A forged leaf is what the client sees instead of the server's certificate: the names of
`CertNames`, signed by waylay's CA. It is built to pass the strictest verifier in common use,
Python 3.13's default context (OpenSSL with `X509_V_FLAG_X509_STRICT`), and the CA/Browser
Forum rules browsers apply: SAN always present (critical when there is no CN, RFC 5280
§4.2.1.6), AKI from the CA's SKI, an SKI, `basicConstraints CA:FALSE`, `keyUsage`,
`extendedKeyUsage serverAuth`, a positive random serial, SHA-256, and a validity of 45 days
(under the 47 days browsers will accept from 2029), backdated 2 days for clients whose clock
is behind.

All leaves of one process share one key, generated once when the forger is built: key
generation is the slow part (RSA-2048 takes tens of milliseconds), signing is well under a
millisecond. The key is never the CA's. No IO here: the caller decides where a certificate
goes (`store.py`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Literal, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from waylay.certs.ca import CertificateAuthority
from waylay.certs.names import CertNames, IPAddress

LEAF_VALIDITY = datetime.timedelta(days=45)
BACKDATE = datetime.timedelta(days=2)

LeafKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class UpstreamNames(NamedTuple):
    """The names a server's certificate claims: its CN and its DNS and IP SAN entries."""

    common_name: str | None
    dns: list[str]
    ips: list[IPAddress]


def names_from_certificate(cert: x509.Certificate) -> UpstreamNames:
    """The CN and every DNS and IP SAN entry of `cert`; a malformed part counts as absent."""
    try:
        attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        attributes = []
    common_name = next((a.value for a in attributes if isinstance(a.value, str)), None)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return UpstreamNames(common_name, [], [])
    dns = san.get_values_for_type(x509.DNSName)
    ips: list[IPAddress] = [
        value
        for value in san.get_values_for_type(x509.IPAddress)
        if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address)
    ]
    return UpstreamNames(common_name, dns, ips)


def _authority_key_id(ca: CertificateAuthority) -> x509.AuthorityKeyIdentifier:
    """The AKI of every leaf: the CA's own SKI; computed from its key for a CA without one."""
    try:
        ca_key_id = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id)


def random_serial() -> int:
    """128 random bits, positive and never zero (RFC 5280 §4.1.2.2)."""
    return int.from_bytes(os.urandom(16), "big") or 1


class LeafForger:
    """Signs leaf certificates for any names with the CA, all with one per-process key."""

    def __init__(self, ca: CertificateAuthority, *, key_type: Literal["ec", "rsa"] = "ec"):
        self.ca = ca
        self.key: LeafKey
        if key_type == "ec":
            self.key = ec.generate_private_key(ec.SECP256R1())
        elif key_type == "rsa":
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(f"key_type must be 'ec' or 'rsa', not {key_type!r}")
        public_key = self.key.public_key()
        self._public_key = public_key
        self._subject_key_id = x509.SubjectKeyIdentifier.from_public_key(public_key)
        self._authority_key_id = _authority_key_id(ca)
        self._key_usage = x509.KeyUsage(
            digital_signature=True,
            # RSA key exchange (TLS 1.2's RSA suites) encrypts to the key; ECDSA keys never do.
            key_encipherment=key_type == "rsa",
            content_commitment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )

    def forge_leaf(
        self, names: CertNames, *, now: datetime.datetime | None = None
    ) -> x509.Certificate:
        """A leaf for `names`, valid from `now` - 2 days for 45 days (never past the CA)."""
        if not names.dns and not names.ips:
            raise ValueError("a certificate needs at least one DNS name or IP address")
        now = now or datetime.datetime.now(datetime.UTC)
        ca_cert = self.ca.cert
        not_before = max(now - BACKDATE, ca_cert.not_valid_before_utc)
        not_after = min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc)
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, names.common_name)]
            if names.common_name
            else []
        )
        alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names.dns]
        alt_names += [x509.IPAddress(address) for address in names.ips]
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(self._public_key)
            .serial_number(random_serial())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            # RFC 5280 §4.2.1.6: with an empty subject the SAN extension is critical.
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=not names.common_name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(self._key_usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(self._subject_key_id, critical=False)
            .add_extension(self._authority_key_id, critical=False)
        )
        return builder.sign(self.ca.key, hashes.SHA256())
