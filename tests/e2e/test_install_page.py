"""The install page: http://waylay.test/ through the proxy, and the proxy's own address."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509

from .clients import Curl
from .waylay_process import WaylayProcess, clean_env
from .wire import WireClient

PAGES = {
    "/cert/pem": ("application/x-x509-ca-cert", "waylay-ca-cert.pem"),
    "/cert/cer": ("application/pkix-cert", "waylay-ca-cert.cer"),
    "/cert/p12": ("application/x-pkcs12", "waylay-ca-cert.p12"),
}


def _headers(raw: bytes) -> dict[str, str]:
    lines = raw.decode("latin-1").split("\r\n")
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}


def test_waylay_test_serves_the_page_with_every_download(curl: Curl, confdir: Path) -> None:
    result = curl("-i", "http://waylay.test/")
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert _headers(head)["content-type"] == "text/html; charset=utf-8"
    for path in PAGES:
        assert f'href="{path}"'.encode() in body
    for platform in (b"Firefox", b"Android", b"iOS", b"Windows", b"macOS", b"SSL_CERT_FILE"):
        assert platform in body


def test_the_downloads_are_the_ca_files_with_their_content_types(
    curl: Curl, confdir: Path, tmp_path: Path
) -> None:
    for path, (content_type, filename) in PAGES.items():
        result = curl("-i", f"http://waylay.test{path}")
        assert result.returncode == 0, result.stderr
        head, _, body = result.stdout.partition(b"\r\n\r\n")
        assert _headers(head)["content-type"] == content_type
        assert body == (confdir / filename).read_bytes()
    ca = x509.load_pem_x509_certificate((confdir / "waylay-ca-cert.pem").read_bytes())
    assert x509.load_der_x509_certificate((confdir / "waylay-ca-cert.cer").read_bytes()) == ca


def test_the_proxys_own_address_serves_the_page_directly(waylay: WaylayProcess, home: Path) -> None:
    result = subprocess.run(
        ["curl", "-q", "-sS", "--max-time", "10", f"http://127.0.0.1:{waylay.port}/"],
        capture_output=True,
        env=clean_env(home),
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert b"waylay" in result.stdout and b'href="/cert/pem"' in result.stdout


def test_an_absolute_url_naming_the_proxy_itself_is_answered_not_forwarded(
    waylay: WaylayProcess,
) -> None:
    with WireClient(waylay.port) as client:
        for _ in range(2):  # keep-alive: the page does not end the connection
            client.send(
                f"GET http://127.0.0.1:{waylay.port}/cert/pem HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{waylay.port}\r\n\r\n".encode()
            )
            response = client.read_response()
            assert response.status == 200
            assert response.body.startswith(b"-----BEGIN CERTIFICATE-----")


def test_the_page_takes_get_only(waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(b"POST http://waylay.test/ HTTP/1.1\r\nHost: waylay.test\r\n"
                    b"Content-Length: 0\r\n\r\n")  # fmt: skip
        assert client.read_response().status == 405


def test_an_unknown_path_is_404(curl: Curl) -> None:
    result = curl("-i", "http://waylay.test/nothing-here")
    assert result.stdout.startswith(b"HTTP/1.1 404")
