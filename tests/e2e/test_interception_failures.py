"""What goes wrong around an intercepted TLS tunnel, end to end, and what waylay does about it.

Clients that leave mid-handshake, send garbage where TLS should be, or corrupt a record; an
origin that resets mid-response, never answers its handshake, or refuses waylay's
ClientHello; SIGTERM with intercepted connections in every state; and 200 connections that
come and go. In every case the client is told what it can be told (an error page inside its
TLS session, or an abort — never a clean close_notify after a truncated body), the other side
is closed, no descriptor is left behind, and waylay prints no traceback (the `start_waylay`
fixture checks it at teardown).
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from .contract import assert_waylay_error
from .origin import MiB
from .pki import Issued, TestCA
from .tls_clients import SClient, TlsWireClient, client_context, connect_tunnel, tls_wire
from .tls_origin import SilentServer, TlsOrigin
from .waylay_process import StartWaylay, WaylayProcess
from .wire import IncompleteResponse, WireClient, request_bytes

HOST = "www.example.test"


def _get(path: str, *headers: tuple[str, str], method: str = "GET") -> bytes:
    return request_bytes(method, path, [("Host", HOST), *headers])


def _client_hello(proxy: WaylayProcess, authority: str, confdir: Path) -> TlsWireClient:
    """A tunnel in which the client sent its ClientHello and nothing more (yet)."""
    client = tls_wire(proxy, authority, confdir, handshake=False)
    client.send_client_hello()
    return client


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _served_normally(proxy: WaylayProcess, origin: TlsOrigin, confdir: Path) -> None:
    with tls_wire(proxy, f"{HOST}:{origin.port}", confdir) as client:
        client.send(_get("/echo/still-fine"))
        assert client.read_response().json()["target"] == "/echo/still-fine"


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    server.start()
    yield server
    server.stop()


# --- the client ---------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["after-client-hello", "after-server-flight"])
@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_client_leaving_mid_handshake_closes_the_upstream(
    when: str, how: str, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    baseline = proxy.open_fds()
    client = _client_hello(proxy, f"{HOST}:{tls_origin.port}", confdir)
    # waylay connects upstream and handshakes there before it answers the ClientHello.
    assert tls_origin.wait_until(lambda: len(tls_origin.handshakes) == 1)
    if when == "after-server-flight":
        client.sock.settimeout(5)
        assert client.sock.recv(65536)  # ServerHello...: waylay waits for the Finished now
    if how == "fin":
        client.sock.shutdown(socket.SHUT_WR)
        client.sock.settimeout(5)
        while client.sock.recv(65536):  # waylay's alert, if any, then its close
            pass
        client.close()
    else:
        _reset(client.sock)
    assert tls_origin.connections[0].closed.wait(5), "the upstream stayed open"
    assert tls_origin.wait_until(lambda: proxy.open_fds() <= baseline), (
        proxy.open_fds(),
        baseline,
    )
    _served_normally(proxy, tls_origin, confdir)


def test_a_client_leaving_while_waylay_handshakes_upstream_is_let_go_at_once(
    proxy: WaylayProcess, pki: TestCA, origin_cert: Issued, confdir: Path
) -> None:
    # The FIN comes while waylay is still in its handshake with the server (1 s here). A
    # client that sends nothing more can never finish its own: it is closed as soon as
    # waylay's handshake is over, not held (with the upstream) for the 10 s handshake limit.
    server = TlsOrigin(origin_cert, handshake_delay=1.0)
    server.start()
    try:
        client = _client_hello(proxy, f"{HOST}:{server.port}", confdir)
        client.sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        with client:
            client.sock.settimeout(15)
            while client.sock.recv(65536):
                pass
        assert time.monotonic() - started < 3
        assert server.wait_until(lambda: len(server.connections) == 1)
        assert server.connections[0].closed.wait(5)
        assert "did not finish its TLS handshake" not in proxy.stderr_text()
    finally:
        server.stop()


def test_a_connect_host_no_certificate_can_name_is_relayed_untouched(
    start_waylay: StartWaylay, pki: TestCA, tls_origin: TlsOrigin, tmp_path: Path
) -> None:
    # A hosts file maps any name, even one with a 64-character label. Without an SNI waylay
    # would verify the server by that name, which TLS cannot carry: the tunnel is relayed.
    name = "a" * 64 + ".example.test"
    hosts = tmp_path / "odd-hosts"
    hosts.write_text(f"127.0.0.1 {name}\n")
    proxy = start_waylay("--upstream-ca", str(pki.cert_path), "--hosts", str(hosts), hosts=False)
    context = ssl.create_default_context(cafile=str(pki.cert_path))
    context.check_hostname = False
    with context.wrap_socket(connect_tunnel(proxy, f"{name}:{tls_origin.port}")) as tls:
        issuer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).issuer
        tls.sendall(_get("/echo/odd", ("Connection", "close")))
        assert tls.recv(65536).startswith(b"HTTP/1.1 200")
    assert issuer == pki.cert.subject  # the origin's own certificate: nothing intercepted
    assert proxy.wait_for_stderr("relayed untouched")
    # An absolute https:// URL for it, where waylay must make the TLS connection: a 502.
    with WireClient(proxy.port) as client:
        url = f"https://{name}:{tls_origin.port}/echo/odd"
        client.send(request_bytes("GET", url, [("Host", f"{name}:{tls_origin.port}")]))
        assert_waylay_error(client.read_response(), 502, b"not a name TLS can send")


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x00\x40" + bytes(range(64)),  # a handshake record that is no ClientHello
        b"\x16\x03\x01\x00\x06\x01\x00\x00\x02\xff\xff",  # a ClientHello cut short inside
        b"\x16\x03\x01\x7f\xff" + b"\x00" * 200,  # a record longer than TLS allows
    ],
    ids=["not-a-hello", "short-hello", "oversized-record"],
)
def test_garbage_after_a_tls_record_header_is_relayed_untouched(
    garbage: bytes, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # Not a ClientHello waylay can read: the tunnel is relayed as it is (the CONNECT is the
    # flow), so the origin's own TLS stack answers the garbage, and then closes.
    sock = connect_tunnel(proxy, f"{HOST}:{tls_origin.port}")
    with sock:
        sock.sendall(garbage)
        sock.settimeout(5)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
    assert proxy.wait_for_stdout(f"CONNECT {HOST}:{tls_origin.port} 200")
    assert tls_origin.wait_until(lambda: len(tls_origin.handshakes) == 1)
    assert tls_origin.handshakes[0].version is None  # the origin's own handshake failed
    assert tls_origin.requests == []
    _served_normally(proxy, tls_origin, confdir)


def test_garbage_instead_of_the_clients_finished(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    client = _client_hello(proxy, f"{HOST}:{tls_origin.port}", confdir)
    client.sock.settimeout(5)
    assert client.sock.recv(65536)
    client.send_raw(b"\x17\x03\x03\x00\x20" + bytes(32))  # an application record, undecryptable
    with client:
        client.wait_closed()
    assert client.ended.startswith("alert"), client.ended  # waylay said why, then closed
    assert proxy.wait_for_stderr("TLS handshake for www.example.test failed")
    assert tls_origin.connections[0].closed.wait(5)
    _served_normally(proxy, tls_origin, confdir)


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "mid-request"])
def test_a_corrupt_record_after_the_handshake_ends_both_connections(
    busy: bool, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    with tls_wire(proxy, f"{HOST}:{tls_origin.port}", confdir) as client:
        client.send(_get("/echo/first"))
        assert client.read_response().status == 200
        if busy:
            client.send(_get("/hang"))
            assert tls_origin.wait_until(lambda: len(tls_origin.requests) == 2)
        client.send_raw(b"\x17\x03\x03\x00\x20" + bytes(32))
        with pytest.raises((IncompleteResponse, ConnectionResetError)):
            client.read_response()
        assert client.ended != "close_notify"
    assert tls_origin.connections[0].closed.wait(5)
    _served_normally(proxy, tls_origin, confdir)


def test_an_error_page_inside_tls_survives_a_client_still_sending(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # A malformed request inside the tunnel: the 400 page, then the lingering close over TLS
    # (close_notify and a FIN, then what the client still sends is read and dropped) — a
    # reset would erase the page before the client read it.
    with tls_wire(proxy, f"{HOST}:{tls_origin.port}", confdir) as client:
        client.send(_get("/echo", ("Content-Length", "-1")))

        def keep_sending() -> None:
            try:
                for _ in range(32):
                    client.send(b"x" * 16384)
            except (OSError, ssl.SSLError):
                pass

        sender = threading.Thread(target=keep_sending, daemon=True)
        sender.start()
        time.sleep(0.3)
        response = client.read_response()
        sender.join(5)
        assert_waylay_error(response, 400)
        assert client.wait_closed() == b""
    assert client.ended == "close_notify"
    assert tls_origin.requests == []


def test_a_client_renegotiation_is_refused_and_nothing_else_breaks(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # openssl s_client's `R` on TLS 1.2: waylay's OpenSSL refuses a client-initiated
    # renegotiation (an alert), as OpenSSL 3 servers do by default; the client gives up.
    client = SClient(proxy, f"{HOST}:{tls_origin.port}", confdir, "-tls1_2")
    try:
        assert client.read_until(b"Verify return code: 0 (ok)")
        client.send(b"GET /echo/before HTTP/1.1\nHost: www.example.test\n\n")
        assert client.read_until(b'"/echo/before"')
        client.send(b"R\n")
        assert client.read_until(b"no renegotiation"), client.output[-500:]
    finally:
        client.close()
    assert tls_origin.connections[0].closed.wait(5)
    _served_normally(proxy, tls_origin, confdir)


# --- the origin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "end"),
    [("cl", "rst"), ("cl", "fin"), ("chunked", "rst"), ("chunked", "fin")],
)
def test_an_origin_ending_mid_response_aborts_the_client(
    framing: str, end: str, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # The head and part of the body went out; the only honest signal left is an abort —
    # never the close_notify that would tell the client its body was complete.
    with tls_wire(proxy, f"{HOST}:{tls_origin.port}", confdir) as client:
        client.send(_get(f"/truncate?framing={framing}&end={end}"))
        with pytest.raises((IncompleteResponse, ConnectionResetError)):
            client.read_response()
    assert client.ended != "close_notify"
    assert proxy.wait_for_stdout("the server closed the connection mid-response")


def test_an_origin_that_never_answers_its_handshake_is_a_504(
    start_waylay: StartWaylay, pki: TestCA, silent_server: SilentServer, confdir: Path
) -> None:
    # The client still gets a TLS session (a certificate forged from its SNI) and, inside it,
    # the reason, once --tls-handshake-timeout is over.
    proxy = start_waylay("--upstream-ca", str(pki.cert_path), "--tls-handshake-timeout", "2")
    started = time.monotonic()
    with tls_wire(proxy, f"{HOST}:{silent_server.port}", confdir, handshake=False) as client:
        client.sock.settimeout(20)  # waylay answers the ClientHello once its own wait is over
        client.handshake()
        client.send(_get("/echo"))
        response = client.read_response()
    assert 1.9 < time.monotonic() - started < 7
    reason = assert_waylay_error(response, 504, b"timed out")
    assert response.header("X-Waylay-Error") == b"upstream-tls-timeout", reason
    assert silent_server.connections[0].closed.wait(5)


def _origin(issued: Issued, **context: object) -> TlsOrigin:
    server = TlsOrigin(issued)
    for name, value in context.items():
        if name == "ciphers":
            server.context.set_ciphers(str(value))
        else:
            setattr(server.context, name, value)
    server.start()
    return server


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        # waylay speaks TLS 1.2 and 1.3; an origin that offers 1.1 at most shares neither.
        (
            {"ciphers": "DEFAULT:@SECLEVEL=0", "maximum_version": ssl.TLSVersion.TLSv1_1},
            b"handshake",
        ),
        # TLS 1.2 with RSA key exchange only (and an EC key): no suite both sides accept.
        (
            {"ciphers": "AES128-SHA", "maximum_version": ssl.TLSVersion.TLSv1_2},
            b"handshake",
        ),
    ],
    ids=["no-version-in-common", "no-cipher-in-common"],
)
# The TLS 1.1 origin is deliberately outdated: that is the point.
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_an_origin_with_nothing_in_common_is_a_502_with_the_reason(
    settings: dict[str, object],
    reason: bytes,
    start_waylay: StartWaylay,
    pki: TestCA,
    origin_cert: Issued,
    confdir: Path,
) -> None:
    server = _origin(origin_cert, **settings)
    try:
        proxy = start_waylay("--upstream-ca", str(pki.cert_path))
        with tls_wire(proxy, f"{HOST}:{server.port}", confdir) as client:
            client.send(_get("/echo/nothing-in-common"))
            response = client.read_response()
        assert_waylay_error(response, 502, reason)
        assert response.header("X-Waylay-Error") == b"upstream-tls-failed"
        assert server.requests == []
    finally:
        server.stop()


def test_a_tls13_only_origin_is_fine(
    start_waylay: StartWaylay, pki: TestCA, origin_cert: Issued, confdir: Path
) -> None:
    server = _origin(origin_cert, minimum_version=ssl.TLSVersion.TLSv1_3)
    try:
        proxy = start_waylay("--upstream-ca", str(pki.cert_path))
        with tls_wire(proxy, f"{HOST}:{server.port}", confdir) as client:
            client.send(_get("/echo/tls13"))
            assert client.read_response().status == 200
        assert server.handshakes[0].version == "TLSv1.3"
    finally:
        server.stop()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_an_origin_requiring_a_client_certificate_is_a_502(
    version: ssl.TLSVersion,
    start_waylay: StartWaylay,
    pki: TestCA,
    origin_cert: Issued,
    confdir: Path,
) -> None:
    # TLS 1.2 refuses in the handshake; TLS 1.3 only once waylay's handshake is over (the
    # server checks the client's certificate after the client's Finished): the alert comes
    # on the first read, and the request that read was for gets the 502.
    server = TlsOrigin(origin_cert, client_ca=str(pki.cert_path))
    server.context.maximum_version = version
    server.start()
    try:
        proxy = start_waylay("--upstream-ca", str(pki.cert_path))
        with tls_wire(proxy, f"{HOST}:{server.port}", confdir) as client:
            client.send(_get("/echo/no-certificate"))
            response = client.read_response()
        assert_waylay_error(response, 502)
        assert server.requests == []
        if version is ssl.TLSVersion.TLSv1_3:
            # The alert after the handshake names the fix (the origin lingers, so no reset
            # wipes the alert out).
            assert response.header_values("x-waylay-error") == [b"upstream-client-cert-required"]
            assert b"--client-cert" in response.body
    finally:
        server.stop()


# --- the whole process --------------------------------------------------------------------


def test_sigterm_with_intercepted_connections_open_exits_promptly_and_cleanly(
    start_waylay: StartWaylay,
    pki: TestCA,
    tls_origin: TlsOrigin,
    silent_server: SilentServer,
    confdir: Path,
) -> None:
    waylay = start_waylay("--upstream-ca", str(pki.cert_path))
    authority = f"{HOST}:{tls_origin.port}"
    idle = tls_wire(waylay, authority, confdir)
    idle.send(_get("/echo/idle"))
    assert idle.read_response().status == 200
    stalled = tls_wire(waylay, authority, confdir)
    stalled.send(_get(f"/download/{1024 * MiB}"))
    stalled.read_head()
    hanging = tls_wire(waylay, authority, confdir)
    hanging.send(_get("/hang"))
    upgraded = tls_wire(waylay, authority, confdir)
    upgraded.send(_get("/upgrade", ("Connection", "Upgrade"), ("Upgrade", "echo")))
    assert upgraded.read_response().status == 101
    mid_handshake = _client_hello(waylay, authority, confdir)
    upstream_handshake = _client_hello(waylay, f"{HOST}:{silent_server.port}", confdir)
    clients = [idle, stalled, hanging, upgraded, mid_handshake, upstream_handshake]
    try:
        assert tls_origin.wait_until(lambda: len(tls_origin.requests) == 4)
        assert silent_server.wait_until(lambda: len(silent_server.connections) == 1)
        started = time.monotonic()
        assert waylay.stop(timeout=5.0) == 0
        assert time.monotonic() - started < 3
        assert "Traceback" not in waylay.stderr_text(), waylay.stderr_text()
        # The handshake waylay cut short is not the client refusing its certificate.
        assert "rejected waylay's certificate" not in waylay.stderr_text()
        for client in clients:
            WireClient.wait_closed(client, timeout=2.0)
    finally:
        for client in clients:
            client.close()


def test_200_intercepted_connections_leave_no_descriptor_behind(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    authority = f"{HOST}:{tls_origin.port}"
    _served_normally(proxy, tls_origin, confdir)
    assert tls_origin.wait_until(lambda: tls_origin.connections[0].closed.is_set())
    baseline = proxy.open_fds()
    context = client_context(confdir)
    for n in range(200):
        kind = n % 5
        if kind == 0:  # a request, Connection: close
            with tls_wire(proxy, authority, confdir, context=context) as client:
                client.send(_get("/echo/churn", ("Connection", "close")))
                assert client.read_response().status == 200
        elif kind == 1:  # kept alive, then the client closes
            with tls_wire(proxy, authority, confdir, context=context) as client:
                client.send(_get("/echo/churn"))
                assert client.read_response().status == 200
        elif kind == 2:  # a reset in the middle of a download
            client = tls_wire(proxy, authority, confdir, context=context)
            client.send(_get(f"/download/{8 * MiB}"))
            client.read_head()
            _reset(client.sock)
        elif kind == 3:  # gone after the ClientHello
            _reset(_client_hello(proxy, authority, confdir).sock)
        else:  # a handshake and nothing more
            tls_wire(proxy, authority, confdir, context=context).close()
    assert tls_origin.wait_until(
        lambda: all(c.closed.is_set() for c in tls_origin.connections), timeout=10
    ), "upstream connections left open"
    assert tls_origin.wait_until(lambda: proxy.open_fds() <= baseline, timeout=10), (
        f"{proxy.open_fds()} descriptors open, {baseline} before"
    )
    print(f"fds: {baseline} before, {proxy.open_fds()} after 200 intercepted connections")
    _served_normally(proxy, tls_origin, confdir)
    # asyncio's warning for writes to a socket already lost: the clients that reset must not
    # be written to record by record after their connection is gone.
    assert "socket.send() raised exception" not in proxy.stderr_text()
