"""The benchmark's own CA and the HTTPS origin's certificate, made fresh for every run.

The proxies trust this CA upstream (waylay ``--upstream-ca``, mitmdump
``ssl_verify_upstream_trusted_ca``), and "direct" clients trust it for nginx itself. What a
client trusts behind a proxy is that proxy's own CA, never this one.

Keys are ECDSA P-256, like waylay's forged leaves: a handshake then costs nginx tens of
microseconds on the load core rather than the millisecond of an RSA-2048 signature, so the
origin does not cap the new-connection rate (S3). The certificate names ``origin.test``, every
``*.origin.test`` (S6 asks for a new name per connection) and ``127.0.0.1`` (mitmdump's
clients name the origin by its address), with the extensions Python 3.13's strict
verification wants (AKI, SKI, critical basicConstraints, keyUsage).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class OriginPki:
    ca: Path  # the CA certificate (PEM): what trusts the origin
    chain: Path  # the origin's certificate, then the CA's
    key: Path  # the origin's private key


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def make_origin_pki(directory: Path, names: tuple[str, ...], ip: str) -> OriginPki:
    """A CA and a certificate for ``names`` and ``ip`` signed by it, written into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "waylay bench CA")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alt_names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    leaf = (
        _builder(leaf_name, ca_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pki = OriginPki(
        ca=directory / "bench-ca.pem",
        chain=directory / "origin-chain.pem",
        key=directory / "origin-key.pem",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(pem))
    pki.chain.write_bytes(leaf.public_bytes(pem) + ca_cert.public_bytes(pem))
    pki.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki
