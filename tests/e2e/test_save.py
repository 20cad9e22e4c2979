"""--save and `waylay flows`: flows recorded by a real proxy, read back by the real CLI.

What the issue asks of the store end to end: flows and bodies as they were (HTTP and
intercepted HTTPS), truncation marked, the file 0600, appending, memory flat over 10,000 flows
and a 1 GiB body, every flow finished a second before a `kill -9` readable, and bad files
refused with one line and left as they were.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import REQUEST_BODY, RESPONSE_BODY, RESPONSE_TRUNCATED

from .clients import curl as run_curl
from .origin import MiB, Origin, pattern_bytes
from .pki import TestCA
from .tls_clients import curl_https
from .tls_origin import TlsOrigin
from .waylay_process import RunWaylay, StartWaylay, WaylayProcess


def _flows_json(run_waylay: RunWaylay, path: Path) -> list[dict[str, object]]:
    result = run_waylay("flows", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _wait_for_flows(path: Path, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            db = open_readonly(path)
            try:
                if db.execute("SELECT count(*) FROM flows").fetchone()[0] >= count:
                    return
            finally:
                db.close()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} flows in {path} after {timeout} s")


def test_flows_and_bodies_are_saved_as_they_went_by(
    start_waylay: StartWaylay,
    origin: Origin,
    tls_origin: TlsOrigin,
    pki: TestCA,
    run_waylay: RunWaylay,
    confdir: Path,
    home: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path), "--upstream-ca", str(pki.cert_path))
    upload = pattern_bytes(300_000)
    (tmp_path / "upload.bin").write_bytes(upload)
    posted = run_curl(proxy.url, "--data-binary", f"@{tmp_path / 'upload.bin'}",
                      origin.url("/echo/posted"), home=home)  # fmt: skip
    assert posted.returncode == 0, posted.stderr
    chunked = run_curl(proxy.url, origin.url("/chunked"), home=home)
    assert chunked.returncode == 0, chunked.stderr
    https = curl_https(proxy, tls_origin.url("/bytes/5000", host="api.example.test"), confdir, home)
    assert https.returncode == 0, https.stderr
    _wait_for_flows(path, 3)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    listed = _flows_json(run_waylay, path)
    assert [f["url"] for f in listed] == [
        origin.url("/echo/posted"),
        origin.url("/chunked"),
        tls_origin.url("/bytes/5000", host="api.example.test"),
    ]
    assert [f["status"] for f in listed] == [200, 200, 200]
    db = open_readonly(path)
    flows = list(iter_flows(db))
    assert body(db, flows[0].store_id, REQUEST_BODY) == upload  # type: ignore[arg-type]
    assert body(db, flows[0].store_id, RESPONSE_BODY) == posted.stdout  # type: ignore[arg-type]
    assert body(db, flows[1].store_id, RESPONSE_BODY) == chunked.stdout  # type: ignore[arg-type]
    assert flows[1].response is not None and flows[1].response.trailers  # kept, with the body
    assert body(db, flows[2].store_id, RESPONSE_BODY) == https.stdout  # type: ignore[arg-type]
    assert flows[2].request.scheme == "https"
    # The intercepted connection's TLS and the four moments are kept (schema version 3).
    client_tls, server_tls = flows[2].client_tls, flows[2].server_tls
    assert client_tls is not None and client_tls.sni == "api.example.test"
    assert server_tls is not None and server_tls.issuer and server_tls.version
    assert (flows[0].client_tls, flows[0].server_tls) == (None, None)
    for f in listed:
        assert f["started"] <= f["request_sent"] <= f["first_response_byte"]  # type: ignore[operator]

    lines = run_waylay("flows", str(path))
    assert lines.returncode == 0
    assert f"GET {origin.url('/chunked')} 200" in lines.stdout


def test_a_body_over_the_limit_is_stored_truncated_and_says_so(
    start_waylay: StartWaylay, origin: Origin, run_waylay: RunWaylay, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path), "--body-limit", "1k")
    result = run_curl(proxy.url, origin.url("/bytes/100000"), home=home)
    assert len(result.stdout) == 100000  # the client got all of it
    _wait_for_flows(path, 1)
    (listed,) = _flows_json(run_waylay, path)
    assert listed["flags"] == RESPONSE_TRUNCATED and listed["response_size"] == 100000
    db = open_readonly(path)
    assert body(db, listed["id"], RESPONSE_BODY) == result.stdout[:1024]  # type: ignore[arg-type]


def test_save_appends_to_an_existing_database(
    start_waylay: StartWaylay, origin: Origin, run_waylay: RunWaylay, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    for run in range(2):
        proxy = start_waylay("--save", str(path))
        run_curl(proxy.url, origin.url(f"/echo/run{run}"), home=home)
        _wait_for_flows(path, run + 1)
        assert proxy.stop() == 0
    assert [f["url"] for f in _flows_json(run_waylay, path)] == [
        origin.url("/echo/run0"),
        origin.url("/echo/run1"),
    ]


def _keep_alive_requests(proxy: WaylayProcess, origin: Origin, count: int) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        request = (f"GET {origin.url('/bytes/100')} HTTP/1.1\r\n"
                   f"Host: {origin.authority}\r\n\r\n").encode()  # fmt: skip
        buffer = b""
        for _ in range(count):
            sock.sendall(request)
            while True:
                end = buffer.find(b"\r\n\r\n")
                if end >= 0 and len(buffer) >= end + 4 + 100:
                    buffer = buffer[end + 4 + 100 :]
                    break
                buffer += sock.recv(65536)


def test_ten_thousand_flows_leave_memory_flat(
    start_waylay: StartWaylay, origin: Origin, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path), "--quiet")
    _keep_alive_requests(proxy, origin, 100)
    _wait_for_flows(path, 100)
    after_100 = proxy.vmrss()
    _keep_alive_requests(proxy, origin, 9900)
    _wait_for_flows(path, 10000, timeout=20)
    grown = proxy.vmrss() - after_100
    print(f"RSS after 100 flows {after_100 / MiB:.1f} MiB, grew {grown / MiB:.1f} MiB by 10,000")
    assert grown < 20 * MiB


def test_after_kill_9_every_flow_finished_a_second_before_is_readable(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path), "--quiet")
    _keep_alive_requests(proxy, origin, 500)
    time.sleep(1.0)
    proxy.send_signal(signal.SIGKILL)
    proxy.proc.wait(5)
    db = sqlite3.connect(path)  # read-write: recovers the WAL as any SQLite reader would
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM flows").fetchone()[0] == 500
    db.close()
    proxy.proc.returncode = 0  # killed on purpose: not the fixture's failure


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"these are notes, not flows\n" * 40, "not a waylay flow database"),
        (None, "not a waylay flow database"),  # an SQLite database of another program
    ],
)
def test_a_save_file_that_is_not_a_flow_database_stops_start_up(
    run_waylay: RunWaylay, confdir: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "other.db"
    if content is None:
        other = sqlite3.connect(path)
        other.execute("CREATE TABLE notes (x)")
        other.commit()
        other.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    result = run_waylay("dump", "--listen", "127.0.0.1:0", "--confdir", str(confdir),
                        "--save", str(path))  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert path.read_bytes() == before


def test_flows_of_a_file_that_is_not_a_flow_database_is_one_line_and_status_2(
    run_waylay: RunWaylay, tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 100)
    result = run_waylay("flows", str(path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    missing = run_waylay("flows", str(tmp_path / "missing.db"))
    assert missing.returncode == 2 and "no such flow database" in missing.stderr


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_1_gib_body_with_save_keeps_peak_rss_under_100_mib(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path))
    result = run_curl(proxy.url, "-o", "/dev/null", "-w", "%{size_download}",
                      origin.url(f"/bytes/{1024 * MiB}"), home=home, timeout=150)  # fmt: skip
    assert result.stdout == str(1024 * MiB).encode(), result.stderr
    peak = proxy.vmhwm()
    print(f"1 GiB with --save: waylay peak RSS {peak / MiB:.1f} MiB")
    assert peak < 100 * MiB
    _wait_for_flows(path, 1)


def test_a_flow_database_damaged_past_its_first_pages_is_one_line_and_status_2(
    start_waylay: StartWaylay, origin: Origin, run_waylay: RunWaylay, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path))
    run_curl(proxy.url, origin.url("/echo/x"), home=home)
    _wait_for_flows(path, 1)
    assert proxy.stop() == 0
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'flows'").fetchone()[0]
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page : (root - 1) * page + 100] = b"\xff" * 100
    path.write_bytes(bytes(data))
    result = run_waylay("flows", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "damaged flow database" in result.stderr
