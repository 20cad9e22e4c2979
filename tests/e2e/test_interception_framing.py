"""HTTP/1 framing inside an intercepted TLS tunnel, end to end: every way a message ends.

A raw TLS client (`TlsWireClient`: TLS over memory BIOs, so it controls segments,
close_notify and FINs) sends exact bytes through a real waylay to the h11 origin behind
stdlib TLS. Each case is one the plain-HTTP tests prove over TCP; here the bytes cross two
`TlsTransport`s, whose records, close_notify alerts and ragged EOFs must not change what the
client or the server sees. The server's own connection ends — an idle close, a stale reused
connection, a read-until-close body — are proved with and without close_notify.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from .clients import httpx_client
from .contract import assert_waylay_error
from .origin import CHUNKED_BODY, CHUNKED_TRAILERS, pattern_bytes
from .pki import Issued, TestCA
from .tls_clients import SClient, TlsWireClient, client_context, tls_wire
from .tls_origin import TlsOrigin
from .waylay_process import WaylayProcess
from .wire import request_bytes

HOST = "www.example.test"
TLS_ENDS = ["ragged", "close_notify"]


def _authority(origin: TlsOrigin, host: str = HOST) -> str:
    return f"{host}:{origin.port}"


def _get(path: str, *headers: tuple[str, str], method: str = "GET", body: bytes = b"") -> bytes:
    fields = [("Host", HOST), *headers]
    if body and not any(
        name.lower() in ("content-length", "transfer-encoding") for name, _ in fields
    ):
        fields.append(("Content-Length", str(len(body))))
    return request_bytes(method, path, fields, body)


def _client(proxy: WaylayProcess, origin: TlsOrigin, confdir: Path) -> TlsWireClient:
    return tls_wire(proxy, _authority(origin), confdir)


# --- bodies -------------------------------------------------------------------------------


def test_chunked_response_with_trailers_then_the_next_request(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get("/chunked", ("TE", "trailers")))
        response = client.read_response()
        assert response.framing == "chunked", response.head
        assert response.body == CHUNKED_BODY
        assert (b"X-Checksum", CHUNKED_TRAILERS[0][1].encode()) in response.trailers
        client.send(_get("/echo/next"))
        assert client.read_response().json()["target"] == "/echo/next"
    assert len(tls_origin.connections) == 1


def test_chunked_request_with_trailers_reaches_the_origin(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    pieces = [b"first piece ", pattern_bytes(40_000), b"last"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nX-Sum: 42\r\n\r\n"
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get("/echo/chunked", ("Transfer-Encoding", "chunked"), method="POST"))
        client.send(body)  # the body in records of its own, after the head's
        echoed = client.read_response().json()
    whole = b"".join(pieces)
    assert echoed["body_length"] == len(whole)
    assert echoed["body_sha256"] == hashlib.sha256(whole).hexdigest()
    assert echoed["trailers"] == [["X-Sum", "42"]]


def test_head_204_and_304_have_no_body_and_the_connection_goes_on(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get("/bytes/5000", method="HEAD"))
        head = client.read_response(b"HEAD")
        assert (head.status, head.header("Content-Length"), head.body) == (200, b"5000", b"")
        client.send(_get("/status/204"))
        no_content = client.read_response()
        assert (no_content.status, no_content.body) == (204, b"")
        client.send(_get("/status/304"))
        not_modified = client.read_response()
        assert (not_modified.status, not_modified.body) == (304, b"")
        # Had any of them been read as having a body, this would not parse as a response.
        client.send(_get("/echo/after"))
        assert client.read_response().json()["target"] == "/echo/after"
    assert len(tls_origin.connections) == 1


def test_100_continue_inside_tls(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    with _client(proxy, tls_origin, confdir) as client:
        client.send(
            _get(
                "/echo/upload", ("Expect", "100-continue"), ("Content-Length", "10"), method="POST"
            )
        )
        informational = client.read_response()
        assert informational.status == 100
        client.send(b"0123456789")
        final = client.read_response(b"POST")
        assert final.status == 200
        assert final.json()["body_length"] == 10
        # An origin that refuses from the head alone: the 413 arrives and no 100 before it.
        client.send(
            _get(
                "/expect-reject", ("Expect", "100-continue"), ("Content-Length", "9"), method="POST"
            )
        )
        informational_ones, refused = client.read_final_response(b"POST")
        assert informational_ones == []
        assert refused.status == 413


def test_http10_client_inside_the_tunnel(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    with _client(proxy, tls_origin, confdir) as client:
        # No Host (HTTP/1.0 needs none): the origin gets the tunnel's authority.
        client.send(request_bytes("GET", "/chunked", [], version="HTTP/1.0"))
        response = client.read_head()
        assert response.header("Transfer-Encoding") is None, response.head
        body = client.wait_closed()
    assert body == CHUNKED_BODY
    assert client.ended == "close_notify"
    assert tls_origin.requests[0].header("Host") == _authority(tls_origin)


def test_pipelined_requests_in_one_record_are_answered_in_order(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    with _client(proxy, tls_origin, confdir) as client:
        client.send(
            _get("/echo/1")
            + _get("/echo/2", method="POST", body=b"two")
            + _get("/bytes/70000")
            + _get("/echo/4")
        )
        targets = [client.read_response().json()["target"] for _ in range(2)]
        download = client.read_response()
        targets.append(client.read_response().json()["target"])
    assert targets == ["/echo/1", "/echo/2", "/echo/4"]
    assert download.body == pattern_bytes(70000)
    assert len(tls_origin.connections) == 1


@pytest.mark.parametrize("size", [1000, 200_000])
def test_request_body_sent_with_its_head(
    size: int, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # 1000 bytes: head and body in one TLS record; 200 KB: the head's record carries the
    # body's first bytes and a dozen records follow in the same write.
    body = pattern_bytes(size)
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get("/echo/body", method="PUT", body=body))
        echoed = client.read_response().json()
    assert echoed["body_length"] == size
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("then_fin", [False, True], ids=["open", "then-fin"])
def test_first_request_in_the_same_segment_as_the_finished(
    then_fin: bool, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # TLS 1.3: the client's Finished and its first application record leave in one write —
    # what a client does when it sends as soon as its handshake is done. With the FIN behind
    # them, the request is all the client will ever send, and it is still answered.
    client = tls_wire(proxy, _authority(tls_origin), confdir, handshake=False)
    with client:
        client.handshake(_get("/echo/early"), then_fin=then_fin)
        assert client.tls.version() == "TLSv1.3"
        response = client.read_response()
        assert response.json()["target"] == "/echo/early"
        if then_fin:
            assert client.wait_closed() == b""


def test_request_then_a_fin_without_close_notify_is_answered(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # A client that half-closes TCP without a close_notify (a ragged EOF) after its request
    # still reads the answer: the EOF ends what it sends, not the TLS session waylay writes on.
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get("/echo/ragged"))
        client.fin_without_close_notify()
        response = client.read_response()
        assert response.json()["target"] == "/echo/ragged"
        assert client.wait_closed() == b""
    assert proxy.wait_for_stdout(f"GET https://{_authority(tls_origin)}/echo/ragged 200")


def test_connection_close_ends_the_tunnel_with_close_notify(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get("/echo/last", ("Connection", "close")))
        response = client.read_response()
        assert response.header("Connection") == b"close"
        assert client.wait_closed() == b""
    assert client.ended == "close_notify"


@pytest.mark.parametrize("tls_end", TLS_ENDS)
def test_read_until_close_response_ends_when_the_origin_closes(
    tls_end: str, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    size = 300_000
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get(f"/close?n={size}&tls-end={tls_end}"))
        response = client.read_response()
    assert response.framing == "close", response.head
    assert response.body == pattern_bytes(size)
    assert response.header("Connection") == b"close"
    assert client.ended  # the end of the body, which is the end of the connection


def test_httpx_keeps_one_tunnel_for_many_requests(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # A real client's keep-alive inside one tunnel: plain GETs, a streamed download, a
    # chunked upload from a generator, a HEAD — one CONNECT, one server connection.
    size = 5 * 1024 * 1024
    with httpx_client(proxy.url, verify=client_context(confdir)) as client:
        for n in range(10):
            assert client.get(tls_origin.url(f"/echo/{n}")).json()["target"] == f"/echo/{n}"
        digest = hashlib.sha256()
        with client.stream("GET", tls_origin.url(f"/download/{size}")) as download:
            for piece in download.iter_bytes():
                digest.update(piece)
        assert digest.hexdigest() == hashlib.sha256(pattern_bytes(size)).hexdigest()
        pieces = [pattern_bytes(100_000), b"tail"]
        echoed = client.post(tls_origin.url("/echo/upload"), content=iter(pieces)).json()
        assert echoed["body_length"] == sum(map(len, pieces))
        assert client.head(tls_origin.url("/bytes/123")).headers["Content-Length"] == "123"
    assert len(tls_origin.connections) == 1
    assert len(tls_origin.requests) == 13


def test_a_key_update_mid_session_keeps_it_going(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # openssl s_client's `K`: a TLS 1.3 KeyUpdate that asks waylay to update its keys too.
    # Reading it makes waylay write (its own KeyUpdate); the session must go on both ways.
    client = SClient(proxy, _authority(tls_origin), confdir, "-tls1_3")
    try:
        assert client.read_until(b"Verify return code: 0 (ok)")
        client.send(b"GET /echo/before HTTP/1.1\nHost: www.example.test\n\n")
        assert client.read_until(b'"/echo/before"')
        client.send(b"K\n")
        assert client.read_until(b"KEYUPDATE")
        client.send(b"GET /echo/after HTTP/1.1\nHost: www.example.test\n\n")
        assert client.read_until(b'"/echo/after"'), client.output[-500:]
    finally:
        client.close()
    assert len(tls_origin.connections) == 1


# --- the server's connection ends between requests ----------------------------------------


@pytest.mark.parametrize("tls_end", TLS_ENDS)
def test_an_idle_close_means_a_new_verified_handshake_with_the_same_sni(
    tls_end: str, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # CONNECT names the IP, the client's SNI names the server: the reconnection must send the
    # same SNI and verify the server against it, as the first connection did.
    authority = f"127.0.0.1:{tls_origin.port}"
    with tls_wire(proxy, authority, confdir, "api.example.test") as client:
        client.send(_get(f"/echo/first?idle-close=0.05&tls-end={tls_end}"))
        first = client.read_response().json()
        assert tls_origin.connections[0].closed.wait(5)
        client.send(_get("/echo/second"))
        second = client.read_response().json()
    assert first["connection_id"] != second["connection_id"]
    assert len(tls_origin.connections) == 2
    assert [h.sni for h in tls_origin.handshakes] == ["api.example.test", "api.example.test"]
    assert proxy.wait_for_stdout(f"GET https://api.example.test:{tls_origin.port}/echo/second 200")


def test_a_reconnection_verifies_the_server_again(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path, tmp_path: Path
) -> None:
    # Between two requests the origin closes its idle connection and starts showing a
    # certificate from a CA waylay does not trust: the new connection is verified on its own,
    # not trusted for what the first one was.
    stranger_dir = tmp_path / "stranger"
    stranger_dir.mkdir()
    stranger = TestCA(stranger_dir, "a stranger CA").issue("stranger", cn=HOST, dns=[HOST])
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get("/echo/first?idle-close=0.05"))
        assert client.read_response().status == 200
        assert tls_origin.connections[0].closed.wait(5)
        tls_origin.context.load_cert_chain(stranger.chain, stranger.key)
        client.send(_get("/echo/second"))
        response = client.read_response()
    assert_waylay_error(response, 502, b"not trusted")
    assert response.header("X-Waylay-Error") == b"upstream-cert-untrusted"
    assert [r.path for r in tls_origin.requests] == ["/echo/first"]


@pytest.mark.parametrize("tls_end", TLS_ENDS)
def test_a_server_closing_the_fresh_connection_before_the_first_request_is_noticed(
    tls_end: str, proxy: WaylayProcess, origin_cert: Issued, confdir: Path
) -> None:
    # waylay's connection to the server is made before the client's handshake and kept for
    # its first request. A client that waits (a browser's preconnect) can outlast the
    # server's patience; the close must be seen, so that even a POST — never sent twice —
    # goes out on a new connection rather than into a dead one (a 502).
    server = TlsOrigin(
        origin_cert, first_request_timeout=0.3, close_notify=tls_end == "close_notify"
    )
    server.start()
    try:
        with tls_wire(proxy, f"{HOST}:{server.port}", confdir) as client:
            assert server.wait_until(lambda: len(server.connections) == 1)
            assert server.connections[0].closed.wait(5)
            time.sleep(0.2)
            client.send(_get("/echo/late", method="POST", body=b"once"))
            response = client.read_response(b"POST")
        assert response.status == 200, response.head + response.body
        assert response.json()["body_length"] == 4
        assert len(server.connections) == 2
    finally:
        server.stop()


@pytest.mark.parametrize("tls_end", TLS_ENDS)
def test_a_stale_reused_upstream_is_retried_once_for_an_idempotent_request(
    tls_end: str, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    # The origin reads the second request on its kept-alive connection and closes without a
    # word: the race of a keep-alive timeout. A GET is sent again on a new TLS connection.
    path = f"/vanish-if-reused?tls-end={tls_end}"
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get(path))
        assert client.read_response().status == 200
        client.send(_get(path))
        retried = client.read_response()
    assert retried.status == 200, retried.head + retried.body
    assert len(tls_origin.connections) == 2
    assert [r.connection_id for r in tls_origin.requests] == [0, 0, 1]
    assert len(tls_origin.handshakes) == 2


def test_a_stale_reused_upstream_is_not_retried_for_a_post(
    proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get("/vanish-if-reused"))
        assert client.read_response().status == 200
        client.send(_get("/vanish-if-reused", method="POST", body=b"once"))
        failed = client.read_response(b"POST")
    assert failed.status == 502
    assert len(tls_origin.requests) == 2  # never sent twice


# --- 101 inside TLS: a tunnel between two TLS sessions ------------------------------------


@pytest.mark.parametrize(
    ("client_end", "tls_end"),
    [("close_notify", "close_notify"), ("close_notify", "ragged"), ("ragged", "close_notify")],
)
def test_upgrade_inside_tls_relays_both_ways_and_half_closes(
    client_end: str, tls_end: str, proxy: WaylayProcess, tls_origin: TlsOrigin, confdir: Path
) -> None:
    upgrade = (("Connection", "Upgrade"), ("Upgrade", "echo"))
    with _client(proxy, tls_origin, confdir) as client:
        client.send(_get(f"/upgrade?say-eof=1&tls-end={tls_end}", *upgrade) + b"early ")
        assert client.read_response().status == 101
        assert client.read_exactly(6) == b"early "
        for n in range(5):
            message = b"message %d " % n + pattern_bytes(20_000 * n)
            client.send(message)
            assert client.read_exactly(len(message)) == message
        # Half-close: the origin hears the end and answers on the direction still open.
        if client_end == "close_notify":
            client.shutdown_write()
        else:
            client.fin_without_close_notify()
        sent = 6 + sum(len(b"message %d " % n) + 20_000 * n for n in range(5))
        assert client.wait_closed() == b"EOF after %d bytes\n" % sent
    assert client.ended in ("close_notify", "ragged")  # an end, not an alert
