"""S6 until it joins `make bench`: how much a new host's forged certificate adds.

Each round opens a fresh CONNECT through waylay, a TLS session with a new SNI (so waylay
forges a certificate) or a known one (cached), and one GET; it reports the medians over 200
rounds and their difference. The origin is the tests' TLS origin with a wildcard certificate,
on loopback; waylay is pinned to core 0, this client to core 1.

    taskset -c 1 .venv/bin/python -m bench.s6_first_certificate
"""

from __future__ import annotations

import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.pki import TestCA
from tests.e2e.tls_origin import TlsOrigin

ROUNDS = 200


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="waylay-s6-"))
    ca = TestCA(directory)
    cert = ca.issue("origin", cn="cdn.example.test", dns=["*.cdn.example.test"], ips=["127.0.0.1"])
    origin = TlsOrigin(cert)
    origin.start()
    confdir = directory / "conf"
    proxy = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "waylay", "dump", "-q",
         "--listen", "127.0.0.1:0", "--confdir", str(confdir), "--upstream-ca", str(ca.cert_path)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proxy.stderr is not None
    port = int(proxy.stderr.readline().rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(confdir / "waylay-ca-cert.pem"))

    def one(sni: str) -> float:
        started = time.perf_counter()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(100)
        with context.wrap_socket(sock, server_hostname=sni) as tls:
            tls.sendall(f"GET /echo/s6 HTTP/1.1\r\nHost: {sni}\r\n\r\n".encode())
            tls.recv(1)
        return (time.perf_counter() - started) * 1000

    try:
        for _ in range(20):
            one("warm.cdn.example.test")
        new, cached = [], []
        for n in range(ROUNDS):
            new.append(one(f"h{n}.cdn.example.test"))
            cached.append(one("warm.cdn.example.test"))
    finally:
        proxy.terminate()
        proxy.wait()
        origin.stop()
    new_ms, cached_ms = statistics.median(new), statistics.median(cached)
    print(f"S6 new host {new_ms:.2f} ms, cached host {cached_ms:.2f} ms, "
          f"forging adds {new_ms - cached_ms:.2f} ms (medians of {ROUNDS})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
