"""The install page (INTERFACE.md, "The install page"; issue 3, point 7), as responses.

Whether a request reaches the page is the connection's business; this checks what the page
answers: the CA in three formats with the right types, the steps per platform, and a page that
loads nothing from anywhere and that a browser may not reinterpret.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography import x509

from waylay.certs.ca import CertificateAuthority
from waylay.installpage import (
    CONTENT_SECURITY_POLICY,
    InstallPage,
    InstallResponse,
    install_response,
    subject_hash_old,
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("ca") / "confdir")


@pytest.fixture(scope="module")
def page(ca: CertificateAuthority) -> InstallPage:
    return InstallPage(ca, proxy_address="127.0.0.1:8080")


def headers(response: InstallResponse) -> dict[bytes, bytes]:
    names = [name.lower() for name, _ in response.headers]
    assert len(names) == len(set(names)), f"a header twice: {response.headers}"
    return {name.lower(): value for name, value in response.headers}


def _openssl(*args: str) -> str:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


class _Page(HTMLParser):
    """What a browser would fetch or run: every URL attribute, scripts, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        self.urls += [value or "" for name, value in attrs if name in ("href", "src", "action")]
        assert not any(name.startswith("on") for name, _ in attrs), attrs

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


# --- the page ----------------------------------------------------------------------------


def test_the_page(page: InstallPage) -> None:
    response = page.respond("/")
    assert response.status == 200
    fields = headers(response)
    assert fields[b"content-type"] == b"text/html; charset=utf-8"
    assert fields[b"content-length"] == str(len(response.body)).encode()
    assert fields[b"cache-control"] == b"no-store"
    assert fields[b"x-content-type-options"] == b"nosniff"
    assert fields[b"content-security-policy"] == CONTENT_SECURITY_POLICY.encode()
    assert response.body.decode("utf-8").startswith("<!DOCTYPE html>")


def test_the_page_is_self_contained(page: InstallPage) -> None:
    parsed = _Page()
    parsed.feed(page.respond("/").body.decode())
    assert "script" not in parsed.tags
    assert {"/cert/pem", "/cert/cer", "/cert/p12"} <= set(parsed.urls)
    assert all(url.startswith("/") and not url.startswith("//") for url in parsed.urls)
    # The one inline stylesheet is the one the policy allows, by its hash.
    [style] = parsed.styles
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY


def test_the_page_shows_the_fingerprint_openssl_computes(
    page: InstallPage, ca: CertificateAuthority
) -> None:
    shown = _openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", str(ca.cert_path))
    fingerprint = shown.partition("=")[2]
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint)
    assert fingerprint in page.respond("/").body.decode()


def test_the_android_file_name_is_openssls_old_subject_hash(
    page: InstallPage, ca: CertificateAuthority
) -> None:
    expected = _openssl("x509", "-noout", "-subject_hash_old", "-in", str(ca.cert_path))
    assert subject_hash_old(ca) == expected
    assert f"/system/etc/security/cacerts/{expected}.0" in page.respond("/").body.decode()


STEPS = {
    "Debian/Ubuntu": "update-ca-certificates",
    "Fedora/RHEL": "update-ca-trust",
    "Arch": "trust anchor --store",
    "Firefox": "Trust this CA to identify websites",
    "NSS": "certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n waylay -i",
    "Chrome": "Chrome",
    "macOS": "add-trusted-cert -d -r trustRoot",
    "macOS keychain": "Always Trust",
    "Windows": "certutil -addstore root waylay-ca-cert.cer",
    "Android user store": "Install a certificate",
    "Android 7": "network_security_config",
    "iOS": "Certificate Trust Settings",
    "Python ssl": "SSL_CERT_FILE",
    "requests": "REQUESTS_CA_BUNDLE",
    "Node": "NODE_EXTRA_CA_CERTS",
    "curl": "CURL_CA_BUNDLE",
    "curl flag": "--cacert",
}


@pytest.mark.parametrize("needle", STEPS.values(), ids=list(STEPS))
def test_the_page_has_the_steps_for(page: InstallPage, needle: str) -> None:
    text = " ".join(html.unescape(page.respond("/").body.decode()).split())
    assert needle in text


def test_the_proxy_address_is_shown_escaped(ca: CertificateAuthority) -> None:
    body = InstallPage(ca, proxy_address="[::1]:8080").respond("/").body.decode()
    assert "http://[::1]:8080" in body
    hostile = InstallPage(ca, proxy_address="<b>x</b>:1").respond("/").body.decode()
    assert "<b>x" not in hostile and "&lt;b&gt;x" in hostile


# --- the downloads -----------------------------------------------------------------------

DOWNLOADS = [
    ("/cert/pem", b"application/x-x509-ca-cert", "pem"),
    ("/cert/cer", b"application/pkix-cert", "cer"),
    ("/cert/p12", b"application/x-pkcs12", "p12"),
]


@pytest.mark.parametrize(("path", "content_type", "extension"), DOWNLOADS)
@pytest.mark.parametrize("query", ["", "?x=1", "?"])
def test_downloads(
    page: InstallPage,
    ca: CertificateAuthority,
    path: str,
    content_type: bytes,
    extension: str,
    query: str,
) -> None:
    response = page.respond(path + query)
    assert response.status == 200
    fields = headers(response)
    assert fields[b"content-type"] == content_type
    assert fields[b"content-disposition"] == (
        f'attachment; filename="waylay-ca-cert.{extension}"'.encode()
    )
    assert fields[b"content-length"] == str(len(response.body)).encode()
    assert fields[b"cache-control"] == b"no-store"
    assert fields[b"x-content-type-options"] == b"nosniff"
    expected = {"pem": ca.cert_pem, "cer": ca.cert_der, "p12": ca.cert_p12}[extension]
    assert response.body == expected


def test_the_downloads_are_the_ca_certificate(page: InstallPage, ca: CertificateAuthority) -> None:
    assert x509.load_pem_x509_certificate(page.respond("/cert/pem").body) == ca.cert
    assert x509.load_der_x509_certificate(page.respond("/cert/cer").body) == ca.cert


def test_the_p12_download_parses_with_openssl(page: InstallPage, tmp_path: Path) -> None:
    p12 = tmp_path / "download.p12"
    p12.write_bytes(page.respond("/cert/p12").body)
    out = _openssl("pkcs12", "-in", str(p12), "-nokeys", "-passin", "pass:")
    assert "BEGIN CERTIFICATE" in out and "PRIVATE KEY" not in out


# --- anything else -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/cert", "/cert/", "/cert/pem/", "/cert/crt", "/CERT/PEM", "", "/index.html"]
)
def test_unknown_paths_are_404_pages(page: InstallPage, path: str) -> None:
    response = page.respond(path)
    assert response.status == 404
    fields = headers(response)
    assert fields[b"content-type"] == b"text/html; charset=utf-8"
    assert fields[b"content-length"] == str(len(response.body)).encode()
    assert fields[b"cache-control"] == b"no-store"
    assert fields[b"x-content-type-options"] == b"nosniff"
    assert fields[b"content-security-policy"] == CONTENT_SECURITY_POLICY.encode()
    assert b'href="/"' in response.body


def test_a_caller_adding_headers_does_not_change_the_next_response(page: InstallPage) -> None:
    page.respond("/").headers.append((b"Connection", b"close"))
    assert (b"Connection", b"close") not in page.respond("/").headers


def test_install_response_is_the_same_answer(page: InstallPage, ca: CertificateAuthority) -> None:
    for path in ("/", "/cert/pem", "/cert/cer", "/nope"):
        assert install_response(path, ca, proxy_address="127.0.0.1:8080") == page.respond(path)
