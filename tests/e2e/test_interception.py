"""HTTPS interception inside CONNECT, end to end: curl, `openssl s_client` and stdlib `ssl`
clients through a real waylay process to a real TLS origin with the tests' own CA.

The origin's certificate is the issue's: CN www.example.test, SANs www.example.test,
api.example.test, *.cdn.example.test and IP 127.0.0.1. waylay trusts the tests' CA through
``--upstream-ca``; the clients trust waylay's CA from its confdir.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from .conftest import ORIGIN_SANS as SANS
from .pki import Issued, TestCA
from .tls_clients import (
    client_context,
    connect_tunnel,
    curl_https,
    get,
    san_of,
    tls_through,
    waylay_ca,
)
from .tls_origin import TlsOrigin
from .waylay_process import StartWaylay, WaylayProcess, clean_env
from .wire import WireClient


def test_curl_sees_the_https_response_in_clear_with_verification_on(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path, home: Path
) -> None:
    url = tls_origin.url("/echo/hello?x=1", host="api.example.test")
    result = curl_https(proxy, url, confdir, home)
    assert result.returncode == 0, result.stderr
    echoed = json.loads(result.stdout)
    assert echoed["method"] == "GET" and echoed["target"] == "/echo/hello?x=1"
    assert tls_origin.handshakes[-1].sni == "api.example.test"
    assert proxy.wait_for_stdout(f"GET {url} 200")


def test_keep_alive_inside_the_tunnel_reuses_one_server_connection(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path, home: Path
) -> None:
    first = tls_origin.url("/echo/1", host="www.example.test")
    second = tls_origin.url("/echo/2", host="www.example.test")
    result = curl_https(proxy, first, confdir, home, second)
    assert result.returncode == 0, result.stderr
    assert len(tls_origin.connections) == 1
    assert [r.path for r in tls_origin.requests] == ["/echo/1", "/echo/2"]


@pytest.mark.parametrize("client", ["python", "openssl"])
def test_connect_to_an_ip_without_sni_gets_every_upstream_name(
    client: str,
    proxy: WaylayProcess,
    tls_origin: TlsOrigin,
    pki: TestCA,
    confdir: Path,
    home: Path,
) -> None:
    authority = f"127.0.0.1:{tls_origin.port}"
    if client == "python":
        with tls_through(proxy, authority, client_context(confdir), "127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
            answer = get(tls, "/echo/ip", "127.0.0.1")
        assert answer.startswith(b"HTTP/1.1 200")
        forged = x509.load_der_x509_certificate(der)
    else:
        result = subprocess.run(
            ["openssl", "s_client", "-proxy", f"127.0.0.1:{proxy.port}", "-connect", authority,
             "-noservername", "-CAfile", str(waylay_ca(confdir)), "-verify_return_error",
             "-verify_ip", "127.0.0.1", "-showcerts"],
            input=b"", capture_output=True, env=clean_env(home), timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
        assert b"Verify return code: 0 (ok)" in result.stdout
        pem = result.stdout.split(b"-----BEGIN CERTIFICATE-----", 1)[1]
        pem = b"-----BEGIN CERTIFICATE-----" + pem.split(b"-----END CERTIFICATE-----")[0]
        forged = x509.load_pem_x509_certificate(pem + b"-----END CERTIFICATE-----\n")
    assert tls_origin.handshakes[0].sni is None
    cn = forged.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["www.example.test"]
    dns, ips = san_of(forged)
    assert set(SANS) <= set(dns)
    assert ips == ["127.0.0.1"]
    waylay_cert = x509.load_pem_x509_certificate(waylay_ca(confdir).read_bytes())
    assert forged.issuer == waylay_cert.subject
    assert forged.issuer != pki.cert.subject


def test_connect_to_an_ip_with_an_sni_sends_that_sni_upstream(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    authority = f"127.0.0.1:{tls_origin.port}"
    with tls_through(proxy, authority, client_context(confdir), "api.example.test") as tls:
        der = tls.getpeercert(binary_form=True)
        answer = get(tls, "/echo/sni", "api.example.test")
    assert answer.startswith(b"HTTP/1.1 200")
    assert tls_origin.handshakes[0].sni == "api.example.test"
    dns, _ = san_of(x509.load_der_x509_certificate(der))
    assert "api.example.test" in dns


def test_alpn_h2_and_http11_to_an_http11_origin_negotiates_http11(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    context = client_context(confdir, ["h2", "http/1.1"])
    authority = f"www.example.test:{tls_origin.port}"
    with tls_through(proxy, authority, context, "www.example.test") as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert get(tls, "/echo/alpn", "www.example.test").startswith(b"HTTP/1.1 200")
    assert tls_origin.handshakes[0].alpn == "http/1.1"


def test_an_origin_without_alpn_gives_a_client_session_without_alpn(
    start_waylay: StartWaylay, pki: TestCA, origin_cert: Issued, confdir: Path
) -> None:
    server = TlsOrigin(origin_cert, alpn=None)
    server.start()
    try:
        proxy = start_waylay("--upstream-ca", str(pki.cert_path))
        context = client_context(confdir, ["h2", "http/1.1"])
        authority = f"www.example.test:{server.port}"
        with tls_through(proxy, authority, context, "www.example.test") as tls:
            assert tls.selected_alpn_protocol() is None
            assert get(tls, "/echo/none", "www.example.test").startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


def test_a_client_offering_only_h2_is_passed_through(
    proxy: WaylayProcess, tls_origin: TlsOrigin, pki: TestCA
) -> None:
    # The origin's own certificate comes back: the client talks to the origin itself.
    context = ssl.create_default_context(cafile=str(pki.cert_path))
    context.set_alpn_protocols(["h2"])
    authority = f"www.example.test:{tls_origin.port}"
    with tls_through(proxy, authority, context, "www.example.test") as tls:
        issuer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).issuer
    assert issuer == pki.cert.subject
    assert proxy.wait_for_stderr("offers only h2")


@pytest.mark.parametrize(
    ("label", "cn", "dns", "expired", "code"),
    [
        ("other-name", "other.example.test", ["other.example.test"], False,
         "upstream-cert-name-mismatch"),
        ("expired", "www.example.test", ["www.example.test"], True, "upstream-cert-expired"),
    ],
)  # fmt: skip
def test_a_server_certificate_that_fails_verification_is_a_502_with_the_reason(
    label: str,
    cn: str,
    dns: list[str],
    expired: bool,
    code: str,
    start_waylay: StartWaylay,
    pki: TestCA,
    confdir: Path,
) -> None:
    server = TlsOrigin(pki.issue(label, cn=cn, dns=dns, expired=expired))
    server.start()
    try:
        proxy = start_waylay("--upstream-ca", str(pki.cert_path))
        authority = f"www.example.test:{server.port}"
        with tls_through(proxy, authority, client_context(confdir), "www.example.test") as tls:
            answer = get(tls, "/echo/bad", "www.example.test")
        assert answer.startswith(b"HTTP/1.1 502"), answer
        assert f"X-Waylay-Error: {code}".encode() in answer
        assert b"--insecure" in answer
        assert server.requests == []  # nothing was sent to an unverified server
        insecure = start_waylay("--insecure")
        with tls_through(insecure, authority, client_context(confdir), "www.example.test") as tls:
            assert get(tls, "/echo/ok", "www.example.test").startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


def test_an_untrusted_server_is_a_502_until_its_ca_is_given(
    start_waylay: StartWaylay, tls_origin: TlsOrigin, pki: TestCA, confdir: Path
) -> None:
    authority = f"www.example.test:{tls_origin.port}"
    plain = start_waylay()
    with tls_through(plain, authority, client_context(confdir), "www.example.test") as tls:
        answer = get(tls, "/echo/x", "www.example.test")
    assert answer.startswith(b"HTTP/1.1 502")
    assert b"X-Waylay-Error: upstream-cert-untrusted" in answer
    assert b"--upstream-ca" in answer
    trusted = start_waylay("--upstream-ca", str(pki.cert_path))
    with tls_through(trusted, authority, client_context(confdir), "www.example.test") as tls:
        assert get(tls, "/echo/x", "www.example.test").startswith(b"HTTP/1.1 200")


def test_ignored_hosts_see_the_origins_own_certificate(
    start_waylay: StartWaylay, tls_origin: TlsOrigin, pki: TestCA
) -> None:
    proxy = start_waylay("--upstream-ca", str(pki.cert_path), "--ignore-hosts", r"^www\.")
    context = ssl.create_default_context(cafile=str(pki.cert_path))
    authority = f"www.example.test:{tls_origin.port}"
    with tls_through(proxy, authority, context, "www.example.test") as tls:
        issuer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).issuer
        assert get(tls, "/echo/raw", "www.example.test").startswith(b"HTTP/1.1 200")
    assert issuer == pki.cert.subject


def test_ignore_hosts_also_matches_the_sni(
    start_waylay: StartWaylay, tls_origin: TlsOrigin, pki: TestCA
) -> None:
    proxy = start_waylay("--upstream-ca", str(pki.cert_path), "--ignore-hosts", r"^api\.")
    context = ssl.create_default_context(cafile=str(pki.cert_path))
    authority = f"127.0.0.1:{tls_origin.port}"
    with tls_through(proxy, authority, context, "api.example.test") as tls:
        issuer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).issuer
    assert issuer == pki.cert.subject


def test_a_client_that_distrusts_the_ca_is_told_how_to_fix_it_and_remembered(
    start_waylay: StartWaylay, tls_origin: TlsOrigin, pki: TestCA, confdir: Path
) -> None:
    proxy = start_waylay("--upstream-ca", str(pki.cert_path), "--passthrough-pinned")
    authority = f"www.example.test:{tls_origin.port}"
    pinned = ssl.create_default_context(cafile=str(pki.cert_path))  # not waylay's CA
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_through(proxy, authority, pinned, "www.example.test")
    assert proxy.wait_for_stderr("does not trust the waylay CA")
    assert proxy.wait_for_stderr("http://waylay.test/")
    # The next connection passes through: the client sees the real server.
    with tls_through(proxy, authority, pinned, "www.example.test") as tls:
        issuer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).issuer
        assert get(tls, "/echo/pinned", "www.example.test").startswith(b"HTTP/1.1 200")
    assert issuer == pki.cert.subject


def test_without_passthrough_pinned_the_next_connection_is_intercepted_again(
    proxy: WaylayProcess, tls_origin: TlsOrigin, pki: TestCA, confdir: Path
) -> None:
    authority = f"www.example.test:{tls_origin.port}"
    pinned = ssl.create_default_context(cafile=str(pki.cert_path))
    for _ in range(2):
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_through(proxy, authority, pinned, "www.example.test")


def test_plain_http_inside_connect_is_intercepted_as_http_flows(
    proxy: WaylayProcess, origin: object
) -> None:
    port = origin.port  # type: ignore[attr-defined]
    sock = connect_tunnel(proxy, f"origin.example.test:{port}")
    with sock:
        sock.sendall(b"GET /echo/plain HTTP/1.1\r\nHost: origin.example.test\r\n"
                     b"Connection: close\r\n\r\n")  # fmt: skip
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert proxy.wait_for_stdout(f"GET http://origin.example.test:{port}/echo/plain 200")


def test_an_absolute_https_url_is_fetched_over_verified_tls(
    start_waylay: StartWaylay, tls_origin: TlsOrigin, pki: TestCA
) -> None:
    # `GET https://…` sent to the proxy itself (no CONNECT): waylay speaks TLS to the server,
    # verified like any other, and keeps that connection for the next such request.
    url = tls_origin.url("/echo/absolute", host="www.example.test")
    request = f"GET {url} HTTP/1.1\r\nHost: www.example.test:{tls_origin.port}\r\n\r\n".encode()
    untrusted = start_waylay()
    with WireClient(untrusted.port) as client:
        client.send(request)
        response = client.read_response()
    assert response.status == 502
    assert response.header_values("x-waylay-error") == [b"upstream-cert-untrusted"]
    proxy = start_waylay("--upstream-ca", str(pki.cert_path))
    with WireClient(proxy.port) as client:
        for _ in range(2):
            client.send(request)
            assert client.read_response().status == 200
    assert [h.sni for h in tls_origin.handshakes][-1] == "www.example.test"
    assert len(tls_origin.connections) == 2  # one refused by the untrusted proxy, one reused
    assert proxy.wait_for_stdout(f"GET {url} 200")
