"""Raw byte relays: after ``101 Switching Protocols`` and through a CONNECT tunnel.

Both directions are checked with exact bytes, large enough to cross many reads, while the
other direction is busy; then one side half-closes and the other must still get the rest
(RFC 9110 §9.3.6: a tunnel closes each side as the peer closes it).
"""

from __future__ import annotations

import threading

from .clients import Curl
from .contract import assert_waylay_error, proxy_request
from .origin import ORIGIN_HOST, BannerPeer, Origin, TunnelPeer, pattern_bytes
from .waylay_process import WaylayProcess
from .wire import WireClient

PAYLOAD = pattern_bytes(512 * 1024)


def _send_in_background(client: WireClient, data: bytes) -> threading.Thread:
    sender = threading.Thread(target=client.send, args=(data,), daemon=True)
    sender.start()
    return sender


def _connect(client: WireClient, authority: str) -> None:
    client.send(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())


def test_upgrade_101_relayed_both_ways(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(
            proxy_request(
                origin, "GET", "/upgrade", [("Connection", "Upgrade"), ("Upgrade", "echo")]
            )
        )
        switched = client.read_response()
        assert switched.status == 101
        assert switched.header("Upgrade") == b"echo"
        client.send(b"ping")
        assert client.read_exactly(4) == b"ping"
        sender = _send_in_background(client, PAYLOAD)
        assert client.read_exactly(len(PAYLOAD)) == PAYLOAD
        sender.join(10)
        client.shutdown_write()
        assert client.wait_closed() == b""
    seen = origin.requests[0]
    assert seen.header("Upgrade") == "echo"
    assert "upgrade" in (seen.header("Connection") or "").lower()


def test_upgrade_bytes_sent_with_the_request_are_relayed(
    origin: Origin, waylay: WaylayProcess
) -> None:
    # A client may send protocol bytes right behind the request; they belong to the new protocol.
    with WireClient(waylay.port) as client:
        client.send(
            proxy_request(
                origin, "GET", "/upgrade", [("Connection", "Upgrade"), ("Upgrade", "echo")]
            )
            + b"early bytes"
        )
        assert client.read_response().status == 101
        assert client.read_exactly(11) == b"early bytes"


def test_connect_tunnel_with_half_close(tunnel_peer: TunnelPeer, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        _connect(client, f"tunnel.example.test:{tunnel_peer.port}")
        established = client.read_response(b"CONNECT")
        assert established.status == 200
        assert established.reason.lower() == b"connection established"
        client.send(b"ping")
        assert client.read_exactly(4) == b"ping"
        sender = _send_in_background(client, PAYLOAD)
        assert client.read_exactly(len(PAYLOAD)) == PAYLOAD
        sender.join(10)
        client.shutdown_write()
        # The peer saw our FIN, and what it sent after it still comes back to us.
        tail = client.wait_closed()
    assert tail == b"EOF after %d bytes\n" % (4 + len(PAYLOAD))


def test_connect_bytes_behind_the_request_enter_the_tunnel(
    tunnel_peer: TunnelPeer, waylay: WaylayProcess
) -> None:
    with WireClient(waylay.port) as client:
        client.send(
            f"CONNECT tunnel.example.test:{tunnel_peer.port} HTTP/1.1\r\n"
            f"Host: tunnel.example.test:{tunnel_peer.port}\r\n\r\nhello".encode()
        )
        assert client.read_response(b"CONNECT").status == 200
        assert client.read_exactly(5) == b"hello"


def test_curl_through_connect_tunnel(origin: Origin, curl: Curl) -> None:
    result = curl("-p", origin.url("/echo?tunnelled"))
    assert result.returncode == 0, result.stderr
    assert b'"target": "/echo?tunnelled"' in result.stdout


def test_connect_to_refused_port_is_502(refused_port: int, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        _connect(client, f"{ORIGIN_HOST}:{refused_port}")
        response = client.read_response(b"CONNECT")
    assert_waylay_error(response, 502)


def test_connect_to_name_not_in_hosts_file_is_502(waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        _connect(client, "not-listed.invalid:443")
        response = client.read_response(b"CONNECT")
    assert_waylay_error(response, 502, b"not in hosts file")


def test_connect_to_a_server_that_speaks_first(waylay: WaylayProcess) -> None:
    # The banner can arrive before waylay has even answered 200: it must wait for the
    # tunnel, not be taken for a stray byte on an idle connection.
    peer = BannerPeer()
    peer.start()
    try:
        for _ in range(20):
            with WireClient(waylay.port) as client:
                _connect(client, f"tunnel.example.test:{peer.port}")
                assert client.read_response(b"CONNECT").status == 200
                assert client.read_exactly(len(BannerPeer.BANNER)) == BannerPeer.BANNER
                client.send(b"ping")
                assert client.read_exactly(4) == b"ping"
    finally:
        peer.stop()
