"""Bodies stream through an intercepted TLS tunnel with back-pressure: memory stays flat.

The plain-HTTP limits of test_streaming.py, over TLS on both sides: 300 MiB each way at
20 MiB/s (curl's ``--limit-rate`` reading, an origin reading at 20 MiB/s) with waylay's peak
RSS under 100 MiB. Those two are `slow`; the quick ones stall one side completely — a client
that stops reading, an origin that stops reading, an upgraded tunnel nobody reads — so a
`TlsTransport` that read ahead of its reader (delivering what OpenSSL already decrypted, or
not passing the raw transport's pause_writing up) would show at once in ``VmHWM``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .contract import proxy_request
from .origin import SLOW_READ_RATE, MiB, Origin, pattern_bytes, pattern_chunks, pattern_sha256
from .tls_clients import TlsWireClient, client_context, tls_wire, waylay_ca
from .tls_origin import TlsOrigin
from .waylay_process import WaylayProcess, clean_env
from .wire import WireClient, request_bytes

SIZE = 300 * MiB
PEAK_RSS_LIMIT = 100 * MiB
HOST = "www.example.test"


def _curl_https(proxy: WaylayProcess, confdir: Path, *args: str) -> list[str]:
    return [
        "curl", "-q", "-sS", "--max-time", "100", "-x", proxy.url,
        "--cacert", str(waylay_ca(confdir)), *args,
    ]  # fmt: skip


def _peak_while(proxy: WaylayProcess, seconds: float) -> int:
    """waylay's peak RSS after watching it for ``seconds`` (early once over the limit)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proxy.vmhwm() < PEAK_RSS_LIMIT:
        time.sleep(0.1)
    return proxy.vmhwm()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_300_mib_download_over_tls_to_a_slow_client(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path, home: Path
) -> None:
    url = tls_origin.url(f"/download/{SIZE}")
    command = _curl_https(proxy, confdir, "--limit-rate", "20M", "-o", "-", url)
    reader = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(home)
    )
    assert reader.stdout is not None
    digest, received = hashlib.sha256(), 0
    while piece := reader.stdout.read(1 * MiB):
        digest.update(piece)
        received += len(piece)
    assert reader.wait(10) == 0, reader.stderr.read() if reader.stderr else ""
    peak = proxy.vmhwm()
    print(f"TLS download: waylay peak RSS {peak / MiB:.1f} MiB")
    assert received == SIZE
    assert digest.hexdigest() == pattern_sha256(SIZE)
    assert peak < PEAK_RSS_LIMIT, f"waylay peak RSS {peak / MiB:.1f} MiB"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_300_mib_upload_over_tls_to_a_slow_origin(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path, home: Path, tmp_path: Path
) -> None:
    upload = tmp_path / "upload.bin"
    with upload.open("wb") as file:
        for piece in pattern_chunks(SIZE):
            file.write(piece)
    command = _curl_https(proxy, confdir, "-T", str(upload), tls_origin.url("/slow-read"))
    result = subprocess.run(command, capture_output=True, env=clean_env(home), timeout=110)
    assert result.returncode == 0, result.stderr
    peak = proxy.vmhwm()
    print(f"TLS upload: waylay peak RSS {peak / MiB:.1f} MiB")
    answer = json.loads(result.stdout)
    assert answer["body_length"] == SIZE
    assert answer["body_sha256"] == pattern_sha256(SIZE)
    assert answer["seconds"] >= 0.8 * SIZE / SLOW_READ_RATE  # the origin was the slow side
    assert peak < PEAK_RSS_LIMIT, f"waylay peak RSS {peak / MiB:.1f} MiB"


def _read_pattern(client: TlsWireClient, offset: int, size: int) -> None:
    """Read ``size`` body bytes and check them against the pattern from ``offset``."""
    expected = pattern_bytes(offset + size)[offset:]
    assert client.read_exactly(size) == expected


def test_a_client_that_stops_reading_holds_the_origin_back(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # The origin could send 1 GiB at loopback speed. While the client reads nothing, waylay
    # must hold the origin back: its client-side write buffer full, TlsTransport passes
    # pause_writing up, the exchange pauses the upstream TlsTransport, which stops handing
    # up what OpenSSL already decrypted as well as reading the socket.
    with tls_wire(proxy, f"{HOST}:{tls_origin.port}", confdir) as client:
        client.send(request_bytes("GET", f"/download/{1024 * MiB}", [("Host", HOST)]))
        assert client.read_head().status == 200
        _read_pattern(client, 0, 1 * MiB)
        peak = _peak_while(proxy, 3.0)
        # Reading again resumes the flow where it stopped, nothing lost or repeated.
        _read_pattern(client, 1 * MiB, 64 * MiB)
    print(f"stalled TLS download: waylay peak RSS {peak / MiB:.1f} MiB")
    assert peak < PEAK_RSS_LIMIT, f"waylay peak RSS {peak / MiB:.1f} MiB"


def test_an_origin_that_stops_reading_holds_the_client_back(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # /slow-read at 1 byte/s takes one read and then sleeps: the client's upload must stall
    # in the kernel's buffers and waylay's write buffer, not pile up in waylay.
    client = tls_wire(proxy, f"{HOST}:{tls_origin.port}", confdir)
    head = [("Host", HOST), ("Content-Length", str(SIZE))]
    client.send(request_bytes("PUT", "/slow-read?rate=1", head))
    client.sock.settimeout(4.0)
    sent = [0]

    def pour() -> None:
        piece = pattern_bytes(1 * MiB)
        try:
            for _ in range(300):
                client.send(piece)
                sent[0] += len(piece)
        except OSError:  # blocked for 4 s (back-pressure works), or closed at the end
            pass

    sender = threading.Thread(target=pour, daemon=True)
    sender.start()
    try:
        peak = _peak_while(proxy, 3.0)
    finally:
        client.abort()
        sender.join(5)
    print(f"stalled TLS upload: {sent[0] / MiB:.0f} MiB sent, waylay peak {peak / MiB:.1f} MiB")
    assert sent[0] < 100 * MiB
    assert peak < PEAK_RSS_LIMIT, f"waylay peak RSS {peak / MiB:.1f} MiB"


def test_an_upgraded_tunnel_inside_tls_that_nobody_reads_stays_bounded(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # A 101 inside TLS is a Tunnel between two TlsTransports. The client pours bytes to an
    # echo and reads nothing back: the echo stalls, then the client — waylay holds neither.
    client = tls_wire(proxy, f"{HOST}:{tls_origin.port}", confdir)
    upgrade = [("Host", HOST), ("Connection", "Upgrade"), ("Upgrade", "echo")]
    client.send(request_bytes("GET", "/upgrade", upgrade))
    assert client.read_response().status == 101
    client.sock.settimeout(4.0)
    sent = [0]

    def pour() -> None:
        piece = pattern_bytes(1 * MiB)
        try:
            for _ in range(300):
                client.send(piece)
                sent[0] += len(piece)
        except OSError:
            pass

    sender = threading.Thread(target=pour, daemon=True)
    sender.start()
    try:
        peak = _peak_while(proxy, 3.0)
    finally:
        client.abort()
        sender.join(5)
    print(f"stalled TLS tunnel: {sent[0] / MiB:.0f} MiB sent, waylay peak {peak / MiB:.1f} MiB")
    assert sent[0] < 100 * MiB
    assert peak < PEAK_RSS_LIMIT, f"waylay peak RSS {peak / MiB:.1f} MiB"


def test_a_client_still_full_when_its_tunnel_turns_tls_is_served_once_it_reads(
    proxy: WaylayProcess, origin: Origin, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # Pipelined requests the client does not read fill waylay's write buffer to it; the last
    # answer takes it over the high-water mark (pause_writing), and the CONNECT and
    # ClientHello behind them are handled at once. The client drains everything while it
    # handshakes — the resume_writing comes while the TLS session has no protocol yet — and
    # the requests inside must not start with their server held back for a full client.
    requests = [proxy_request(origin, "GET", f"/big-head?n={n}") for n in range(150)]
    # How many answers fill waylay's buffer on this machine: the origin sees one request
    # more than the exchanges that completed (the next one waits for the client to read).
    with _small_window_socket(proxy.port) as probe:
        probe.sendall(b"".join(requests))
        time.sleep(1.5)
        forwarded = len(origin.requests)
        _reset(probe)
    count = forwarded - 1
    assert count < 150, "waylay never waited for this client"
    authority = f"{HOST}:{tls_origin.port}"
    sock = _small_window_socket(proxy.port)
    client = TlsWireClient(sock, client_context(confdir), HOST)
    with client:
        connect = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()
        sock.sendall(b"".join(requests[:count]) + connect + client.client_hello())
        time.sleep(1.5)  # the CONNECT turns TLS while the client reads nothing
        plain = _PlainView(sock)
        for _ in range(count):
            assert plain.read_response().status == 204
        assert plain.read_response(b"CONNECT").status == 200
        client.already_received(plain.read_available(0.05))
        client.handshake()
        client.send(request_bytes("GET", "/echo/inside", [("Host", HOST)]))
        sock.settimeout(5.0)  # not the 60 s of a server held back, then a 504
        assert client.read_response().json()["target"] == "/echo/inside"


class _PlainView(WireClient):
    """A WireClient reading the plain bytes that come before TLS on a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._eof = False


def _small_window_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Before connect, so the window the client announces is small from the start.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.settimeout(10.0)
    sock.connect(("127.0.0.1", port))
    return sock


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
