"""Transparent mode, end to end, across a real routed network of namespaces.

    client 198.18.1.2 ─── 198.18.1.1 gateway 198.18.2.1 ─── 198.18.2.2 server
           2001:2:1::2 ── 2001:2:1::1 (waylay) 2001:2:2::1 ── 2001:2:2::2

The gateway forwards between the two links, and its rules (applied by ``waylay transparent
rules --gateway eth0 --apply``) redirect the client's TCP connections to waylay, which listens on
``*:8080`` there. The client is configured with no proxy at all: it resolves names from its
own namespace's hosts file and connects to the server's addresses, as a phone behind a
gateway would. The server namespace holds the tests' own origins (HTTP, HTTPS on 443 and on
a port that is not 443, a line echo, a server that speaks first), made from this process
with ``Host.inside()``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..testdata import CLIENTHELLOS
from .netns import Host, Network, available
from .origin import ConnectionRecord, Origin, TunnelPeer, _Listener
from .pki import TestCA
from .tls_origin import TlsOrigin
from .waylay_process import WaylayProcess, clean_env, waylay_command

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(available() is not None, reason=str(available())),
]

SERVER4, SERVER6 = "198.18.2.2", "2001:2:2::2"
GATEWAY4 = "198.18.1.1"
PROXY_PORT = 8080
# Redirected: the usual two, TLS elsewhere, the echo and the talker, and two nobody serves.
PORTS = (80, 443, 8443, 7, 25, 81, 444, 9443)
# --ignore-hosts, matched against the original address and against the SNI.
IGNORED = (r"^198\.18\.2\.2:9443$", r"^ignored\.example\.test:")
CLIENT_HOSTS = f"""\
{SERVER4} www.example.test ignored.example.test
{SERVER6} www6.example.test
"""
BANNER = b"220 smtp.example.test ESMTP waylay-tests\r\n"
PEEK_TIMEOUT = 2.0  # long enough that a server-first answer that waited for it would show
TLS_HANDSHAKE_TIMEOUT = 3.0  # --tls-handshake-timeout (the default, 10 s, would slow the suite)


class Talker(_Listener):
    """A server that speaks first (as SMTP and SSH do), then echoes each line upper-cased."""

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        sock.sendall(BANNER)
        buffered = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            buffered += data
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                sock.sendall(line.upper() + b"\n")


@dataclass
class Lab:
    network: Network
    client: Host
    gateway: Host
    server: Host
    waylay: WaylayProcess
    ca_cert: Path
    save: Path
    http: Origin
    http6: Origin
    https: TlsOrigin
    https6: TlsOrigin
    tls_elsewhere: TlsOrigin
    tls_cert_cn: str
    test_ca: Path

    def curl(self, *args: str, check: bool = True) -> str:
        """curl from the client namespace, with no proxy; its stdout."""
        result = self.client.run(
            "curl", "--silent", "--show-error", "--max-time", "10", "--noproxy", "*", *args,
            check=check, env=clean_env(self.save.parent),
        )  # fmt: skip
        return result.stdout

    def connect(self, host: str, port: int) -> socket.socket:
        """A TCP connection made from the client namespace."""
        with self.client.inside():
            return socket.create_connection((host, port), timeout=10)

    def stored(self) -> list[dict[str, object]]:
        """The flows waylay saved so far (it commits within a second)."""
        result = subprocess_run(waylay_command(["flows", str(self.save), "--json"]), self.save)
        return [json.loads(line) for line in result.splitlines()]


TCP_SCRIPT = """\
def tcp_message(flow):
    message = flow.messages[-1]
    if message.from_client:
        message.content = message.content.replace(b"swap-me", b"SWAPPED")
"""


def subprocess_run(command: list[str], save: Path) -> str:
    import subprocess

    result = subprocess.run(
        command, capture_output=True, text=True, env=clean_env(save.parent), timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def build_network(network: Network) -> tuple[Host, Host, Host]:
    client, gateway, server = network.host("c"), network.host("g"), network.host("s")
    network.link(client, "eth0", ["198.18.1.2/24", "2001:2:1::2/64"],
                 gateway, "eth0", [f"{GATEWAY4}/24", "2001:2:1::1/64"])  # fmt: skip
    network.link(gateway, "eth1", ["198.18.2.1/24", "2001:2:2::1/64"],
                 server, "eth0", [f"{SERVER4}/24", f"{SERVER6}/64"])  # fmt: skip
    client.run("ip", "route", "add", "default", "via", GATEWAY4)
    client.run("ip", "-6", "route", "add", "default", "via", "2001:2:1::1")
    server.run("ip", "route", "add", "default", "via", "198.18.2.1")
    server.run("ip", "-6", "route", "add", "default", "via", "2001:2:2::1")
    gateway.sysctl("net.ipv4.ip_forward", "1")
    gateway.sysctl("net.ipv6.conf.all.forwarding", "1")
    client.write_hosts(CLIENT_HOSTS)
    return client, gateway, server


def apply_rules(host: Host, home: Path, *how: str, ports: tuple[int, ...]) -> None:
    """`waylay transparent rules ... --apply`, run inside ``host`` (never the machine)."""
    rules = ["transparent", "rules", *how, "--proxy-port", str(PROXY_PORT)]
    host.run(
        *waylay_command([*rules, "--ports", ",".join(map(str, ports)), "--apply"]),
        env=clean_env(home),
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("transparent")
    network = Network("t")
    listeners: list[_Listener] = []
    waylay: WaylayProcess | None = None
    try:
        client, gateway, server = build_network(network)
        test_ca = TestCA(tmp)
        cn = "origin.example.test"
        issued = test_ca.issue(
            "origin", cn=cn,
            dns=["www.example.test", "www6.example.test", "api.example.test",
                 "ignored.example.test"],
            ips=[SERVER4, SERVER6],
        )  # fmt: skip
        with server.inside():
            http = Origin(SERVER4, 80)
            http6 = Origin(SERVER6, 80)
            https = TlsOrigin(issued, host=SERVER4, port=443)
            https6 = TlsOrigin(issued, host=SERVER6, port=443)
            tls_elsewhere = TlsOrigin(issued, host=SERVER4, port=8443)
            tls_ignored = TlsOrigin(issued, host=SERVER4, port=9443)
            echo, echo6 = TunnelPeer(SERVER4, 7), TunnelPeer(SERVER6, 7)
            talker = Talker(SERVER4, 25)
        listeners = [http, http6, https, https6, tls_elsewhere, tls_ignored, echo, echo6, talker]
        for listener in listeners:
            listener.start()
        home = tmp / "home"
        home.mkdir()
        apply_rules(gateway, home, "--gateway", "eth0", ports=PORTS)
        confdir = tmp / "confdir"
        save = tmp / "flows.db"
        # Every TCP flow goes through a tcp_message hook; only a marked line is changed.
        script = tmp / "swap.py"
        script.write_text(TCP_SCRIPT)
        waylay = WaylayProcess(
            [
                "dump", "--mode", "transparent", "--listen", f"*:{PROXY_PORT}",
                "--confdir", str(confdir), "--upstream-ca", str(test_ca.cert_path),
                "--peek-timeout", str(PEEK_TIMEOUT), "--save", str(save),
                "--tls-handshake-timeout", str(TLS_HANDSHAKE_TIMEOUT),
                *(arg for pattern in IGNORED for arg in ("--ignore-hosts", pattern)),
                "-s", str(script),
            ],
            clean_env(home),
            prefix=gateway.prefix,
        )  # fmt: skip
        waylay.wait_ready()
        yield Lab(
            network, client, gateway, server, waylay, confdir / "waylay-ca-cert.pem", save,
            http, http6, https, https6, tls_elsewhere, cn, test_ca.cert_path,
        )  # fmt: skip
    finally:
        if waylay is not None:
            status = waylay.stop()
            assert status == 0, waylay.stderr_text()
            assert "Traceback" not in waylay.stderr_text(), waylay.stderr_text()
        for listener in listeners:
            listener.stop()
        network.close()


def test_http_by_address_is_a_flow_with_the_body(lab: Lab) -> None:
    body = lab.curl(f"http://{SERVER4}/echo?by=address")
    assert json.loads(body)["target"] == "/echo?by=address"
    assert lab.waylay.wait_for_stdout(f"GET http://{SERVER4}/echo?by=address 200")


def test_http_by_name_is_named_by_its_host_header(lab: Lab) -> None:
    body = lab.curl("http://www.example.test/echo?by=name")
    received = json.loads(body)
    assert received["target"] == "/echo?by=name"
    assert ["Host", "www.example.test"] in received["headers"]
    assert lab.waylay.wait_for_stdout("GET http://www.example.test/echo?by=name 200")


def test_https_by_name_is_verified_and_intercepted(lab: Lab) -> None:
    body = lab.curl("--cacert", str(lab.ca_cert), "https://www.example.test/echo?tls=sni")
    assert json.loads(body)["target"] == "/echo?tls=sni"
    assert lab.waylay.wait_for_stdout("GET https://www.example.test/echo?tls=sni 200")
    assert any(h.sni == "www.example.test" for h in lab.https.handshakes)


def test_https_without_sni_gets_the_servers_names_sniffed(lab: Lab) -> None:
    """No SNI (an IP literal): the forged certificate carries the upstream's CN and SANs."""
    context = ssl.create_default_context(cafile=str(lab.ca_cert))
    before = len(lab.https.handshakes)
    with (
        lab.connect(SERVER4, 443) as raw,
        # An IP literal: Python sends no SNI and checks the IP against the certificate.
        context.wrap_socket(raw, server_hostname=SERVER4) as tls,
    ):
        cert = tls.getpeercert()
        tls.sendall(b"GET /echo?tls=none HTTP/1.1\r\nHost: 198.18.2.2\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    subject = dict(item[0] for item in cert["subject"])
    assert subject["commonName"] == lab.tls_cert_cn
    names = {value for kind, value in cert["subjectAltName"]}
    assert {"www.example.test", "www6.example.test", "api.example.test", SERVER4} <= names
    assert [h.sni for h in lab.https.handshakes[before:]] == [None]


def test_tls_on_another_port_is_detected_by_content(lab: Lab) -> None:
    body = lab.curl("--cacert", str(lab.ca_cert), "https://www.example.test:8443/echo?port=8443")
    assert json.loads(body)["target"] == "/echo?port=8443"
    assert lab.waylay.wait_for_stdout("GET https://www.example.test:8443/echo?port=8443 200")


@pytest.mark.parametrize(
    "url",
    [
        "https://www.example.test:9443/echo?ignored=address",  # by the original address
        "https://ignored.example.test/echo?ignored=sni",  # by the SNI
    ],
)
def test_ignored_hosts_are_relayed_untouched(lab: Lab, url: str) -> None:
    """The client sees the server's own certificate (it trusts only the tests' CA here)."""
    body = lab.curl("--cacert", str(lab.test_ca), url)
    assert json.loads(body)["target"] == url[url.index("/echo") :]
    port = 9443 if ":9443" in url else 443
    flow = _flow(
        lab,
        lambda f: (
            f["kind"] == "tcp"
            and f["url"] == f"tcp://{SERVER4}:{port}"
            and f["response_size"] > 1000
        ),
    )  # fmt: skip: a server certificate went by
    assert flow["error"] is None


def _flow(lab: Lab, predicate: object, timeout: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        flows = [f for f in lab.stored() if predicate(f)]  # type: ignore[operator]
        if flows or time.monotonic() > deadline:
            assert flows, lab.stored()
            return flows[-1]
        time.sleep(0.2)


def test_line_protocol_is_relayed_unchanged_and_recorded_as_tcp(lab: Lab) -> None:
    lines = [b"hello\n", b"GET is not a request line here\n", bytes(range(1, 10)) + b"\n"]
    with lab.connect(SERVER4, 7) as sock:
        received = b""
        for line in lines:
            sock.sendall(line)
            while not received.endswith(line):
                chunk = sock.recv(65536)
                assert chunk, "the relay closed early"
                received += chunk
        sock.shutdown(socket.SHUT_WR)
        # The echo says how much it saw once the client is done, and closes.
        while chunk := sock.recv(65536):
            received += chunk
    sent = sum(map(len, lines))
    farewell = b"EOF after %d bytes\n" % sent
    assert received == b"".join(lines) + farewell
    down = sent + len(farewell)
    assert lab.waylay.wait_for_stdout(f"TCP tcp://{SERVER4}:7 {sent}b up {down}b down"), (
        lab.waylay.stdout_lines()
    )
    flow = _flow(lab, lambda f: f["kind"] == "tcp" and f["url"] == f"tcp://{SERVER4}:7")
    assert (flow["request_size"], flow["response_size"]) == (sent, down)
    assert flow["server"] == [SERVER4, 7]
    parts: dict[int, bytes] = {}
    with sqlite3.connect(lab.save) as db:
        rows = db.execute(
            "SELECT part, data FROM bodies WHERE flow = ? ORDER BY part, seq", (flow["id"],)
        )
        for part, data in rows:
            parts[part] = parts.get(part, b"") + data
    assert parts == {0: b"".join(lines), 1: b"".join(lines) + farewell}


def test_server_speaks_first_without_waiting_for_the_peek(lab: Lab) -> None:
    started = time.monotonic()
    with lab.connect(SERVER4, 25) as sock:
        banner = b""
        while not banner.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            assert chunk
            banner += chunk
        waited = time.monotonic() - started
        sock.sendall(b"helo client\n")
        assert sock.recv(65536) == b"HELO CLIENT\n"
    assert banner == BANNER
    # The peek would have waited PEEK_TIMEOUT for the client; the server ended it at once.
    assert waited < PEEK_TIMEOUT / 2, waited
    assert lab.waylay.wait_for_stdout(f"TCP tcp://{SERVER4}:25")


def test_ipv6_http_https_and_tcp(lab: Lab) -> None:
    body = lab.curl("-6", f"http://[{SERVER6}]/echo?v6=http")
    assert json.loads(body)["target"] == "/echo?v6=http"
    assert lab.waylay.wait_for_stdout(f"GET http://[{SERVER6}]/echo?v6=http 200")
    body = lab.curl("-6", "--cacert", str(lab.ca_cert), "https://www6.example.test/echo?v6=tls")
    assert json.loads(body)["target"] == "/echo?v6=tls"
    assert lab.waylay.wait_for_stdout("GET https://www6.example.test/echo?v6=tls 200")
    assert any(h.sni == "www6.example.test" for h in lab.https6.handshakes)
    with lab.connect(SERVER6, 7) as sock:
        sock.sendall(b"over six\n")
        assert sock.recv(65536) == b"over six\n"
    assert lab.waylay.wait_for_stdout(f"TCP tcp://[{SERVER6}]:7")


def test_a_refused_destination_is_a_502_for_http_and_a_reset_otherwise(lab: Lab) -> None:
    page = lab.curl("--include", f"http://{SERVER4}:81/nobody")
    assert page.startswith("HTTP/1.1 502"), page
    assert "refused" in page
    with lab.connect(SERVER4, 444) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello")
        with pytest.raises(ConnectionResetError):
            while sock.recv(65536):
                pass
    assert lab.waylay.wait_for_stderr(f"tcp://{SERVER4}:444: {SERVER4}:444 refused")
    assert lab.waylay.wait_for_stdout(f"TCP tcp://{SERVER4}:444 << {SERVER4}:444 refused")


def test_a_connection_to_waylay_itself_is_refused_not_looped(lab: Lab) -> None:
    """Not redirected (8080 is not a redirected port): waylay's own address → refused."""
    baseline = lab.waylay.open_fds()
    for _ in range(20):
        # Reset at once: the request may not even be sent (nor connect() return) before it.
        with pytest.raises(ConnectionResetError), lab.connect(GATEWAY4, PROXY_PORT) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 198.18.1.1:8080\r\n\r\n")
            while sock.recv(65536):
                pass
    assert lab.waylay.wait_for_stderr("connected to waylay itself")
    assert "serves only connections the network redirected" in lab.waylay.stderr_text()
    deadline = time.monotonic() + 5
    while lab.waylay.open_fds() > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.waylay.open_fds() <= baseline
    # And it still serves the redirected ones.
    assert json.loads(lab.curl(f"http://{SERVER4}/echo?after=refusal"))["target"]


# -- bad input: never a crash or a stuck task -------------------------------------------------


def _read_to_end(sock: socket.socket, timeout: float) -> bytes:
    """Everything until the peer closes (a reset counts as closed); fails after ``timeout``."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_garbage_after_a_tls_record_header_is_relayed_untouched(lab: Lab) -> None:
    garbage = b"\x16\x03\x01\x00\x20" + b"\xfe" * 32  # a handshake record, not a ClientHello
    with lab.connect(SERVER4, 443) as sock:
        sock.sendall(garbage)
        _read_to_end(sock, timeout=10)  # the origin's TLS gave up on it and closed
    assert lab.waylay.wait_for_stderr("not a TLS ClientHello"), lab.waylay.stderr_text()
    flow = _flow(lab, lambda f: f["kind"] == "tcp" and f["url"] == f"tcp://{SERVER4}:443")
    assert flow["request_size"] == len(garbage)


def test_half_a_client_hello_then_a_close_is_logged_and_closed(lab: Lab) -> None:
    hello = (CLIENTHELLOS / "curl-name.bin").read_bytes()
    with lab.connect(SERVER4, 443) as sock:
        sock.sendall(hello[: len(hello) // 2])
        sock.shutdown(socket.SHUT_WR)
        assert _read_to_end(sock, timeout=10) == b""
    assert lab.waylay.wait_for_stderr("closed its connection half-way through its ClientHello")


def test_half_a_client_hello_then_silence_is_closed_at_the_handshake_timeout(lab: Lab) -> None:
    hello = (CLIENTHELLOS / "curl-name.bin").read_bytes()
    with lab.connect(SERVER4, 443) as sock:
        sock.sendall(hello[:40])
        assert _read_to_end(sock, timeout=TLS_HANDSHAKE_TIMEOUT + 10) == b""
    assert lab.waylay.wait_for_stderr(
        f"sent part of a ClientHello and then nothing for {TLS_HANDSHAKE_TIMEOUT:g}s"
    )


def test_a_silent_client_is_relayed_after_the_peek(lab: Lab) -> None:
    """Nothing within the peek: a server-first protocol, perhaps — relayed, then it talks."""
    with lab.connect(SERVER4, 7) as sock:
        time.sleep(PEEK_TIMEOUT + 0.5)
        sock.sendall(b"late\n")
        sock.settimeout(10)
        assert sock.recv(65536) == b"late\n"
    assert lab.waylay.wait_for_stdout(f"TCP tcp://{SERVER4}:7 5b up")


# -- local capture: the client and waylay on one host -----------------------------------------

LOCAL_SERVER4, LOCAL_SERVER6 = "198.18.3.2", "2001:2:3::2"
MARK = "0x2a"


@contextlib.contextmanager
def local_capture(
    tmp_path: Path, *waylay_args: str
) -> Iterator[tuple[Host, WaylayProcess, list[Origin], Path]]:
    """One host with a client and waylay, its rules for local capture, and a server beside it."""
    network = Network("l")
    waylay: WaylayProcess | None = None
    origins: list[Origin] = []
    try:
        local, server = network.host("l"), network.host("s")
        network.link(local, "eth0", ["198.18.3.1/24", "2001:2:3::1/64"],
                     server, "eth0", [f"{LOCAL_SERVER4}/24", f"{LOCAL_SERVER6}/64"])  # fmt: skip
        with server.inside():
            origins = [Origin(LOCAL_SERVER4, 80), Origin(LOCAL_SERVER6, 80)]
        for origin in origins:
            origin.start()
        home = tmp_path / "home"
        home.mkdir()
        apply_rules(local, home, "--local", "--exclude-mark", MARK, ports=(80,))
        waylay = WaylayProcess(
            [
                "dump", "--mode", "transparent", "--listen", f"*:{PROXY_PORT}",
                "--confdir", str(tmp_path / "confdir"), *waylay_args,
            ],
            clean_env(home),
            prefix=local.prefix,
        )  # fmt: skip
        waylay.wait_ready()
        yield local, waylay, origins, home
    finally:
        if waylay is not None:
            assert waylay.stop() == 0, waylay.stderr_text()
        for origin in origins:
            origin.stop()
        network.close()


def _curl(
    host: Host, home: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return host.run(
        "curl", "--silent", "--show-error", "--max-time", "10", "--noproxy", "*", *args,
        env=clean_env(home), check=check,
    )  # fmt: skip


def test_local_capture_spares_waylays_own_connections(tmp_path: Path) -> None:
    """A client on waylay's own host is captured; waylay's upstream (marked) is not — or it
    would be redirected to itself, again and again."""
    with local_capture(tmp_path, "--upstream-mark", MARK) as (local, waylay, origins, home):
        for url in (
            f"http://{LOCAL_SERVER4}/echo?local=4",
            f"http://[{LOCAL_SERVER6}]/echo?local=6",
        ):
            result = _curl(local, home, url)
            assert json.loads(result.stdout)["target"] == url[url.index("/echo") :]
            assert waylay.wait_for_stdout(f"GET {url} 200"), waylay.stdout_lines()
        # Each request reached the server once: waylay's own connection was not captured.
        assert [len(origin.requests) for origin in origins] == [1, 1]
        assert "redirected back" not in waylay.stderr_text()


def test_a_redirect_back_to_waylay_is_refused_not_looped(tmp_path: Path) -> None:
    """Rules that exclude a mark waylay does not set: its own connection comes back to it."""
    with local_capture(tmp_path) as (local, waylay, origins, home):
        for url in (f"http://{LOCAL_SERVER4}/echo?loop=4", f"http://[{LOCAL_SERVER6}]/echo?loop=6"):
            page = _curl(local, home, "--include", url, check=False).stdout
            assert page.startswith("HTTP/1.1 502"), (page, waylay.stderr_text())
            assert waylay.wait_for_stderr("was redirected back to it"), waylay.stderr_text()
        assert "--upstream-mark MARK" in waylay.stderr_text()
        assert [len(origin.requests) for origin in origins] == [0, 0]
        baseline = waylay.open_fds()
        assert baseline < 64, baseline  # no pile of looped connections


def test_upstream_mark_without_the_right_to_mark_is_exit_2(tmp_path: Path) -> None:
    """Checked at start-up, not at the first connection: without the capability, exit 2."""
    # Still root, but without the two capabilities SO_MARK accepts (CAP_NET_ADMIN, NET_RAW).
    result = subprocess.run(
        ["setpriv", "--bounding-set=-net_admin,-net_raw",
         *waylay_command(["dump", "--listen", "127.0.0.1:0", "--upstream-mark", "0x2a",
                          "--confdir", str(tmp_path / "confdir")])],
        capture_output=True, text=True, env=clean_env(tmp_path), timeout=30,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "waylay: error: --upstream-mark 0x2a: cannot mark sockets (Operation not permitted); "
        "it needs root with CAP_NET_ADMIN, as the iptables rules it works with do"
    ]


def test_tcp_message_hooks_change_a_redirected_protocol(lab: Lab) -> None:
    with lab.connect(SERVER4, 7) as sock:
        sock.sendall(b"please swap-me\n")
        received = b""
        while not received.endswith(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, "the relay closed early"
            received += chunk
    # The client's bytes were changed on their way; the echo sent back what it got.
    assert received == b"please SWAPPED\n"
