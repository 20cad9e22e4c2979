"""`waylay replay FILE`: saved requests sent again as they were, new flows linked back."""

from __future__ import annotations

from pathlib import Path

from .clients import curl as run_curl
from .origin import Origin
from .pki import TestCA
from .test_save import _flows_json, _wait_for_flows
from .tls_clients import curl_https
from .tls_origin import TlsOrigin
from .waylay_process import RunWaylay, StartWaylay


def test_replay_sends_the_saved_requests_again_and_links_the_new_flows(
    start_waylay: StartWaylay,
    origin: Origin,
    tls_origin: TlsOrigin,
    pki: TestCA,
    run_waylay: RunWaylay,
    hosts_file: Path,
    confdir: Path,
    home: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path), "--upstream-ca", str(pki.cert_path))
    (tmp_path / "body.txt").write_bytes(b"name=waylay&x=" + b"y" * 5000)
    run_curl(proxy.url, "--data-binary", f"@{tmp_path / 'body.txt'}", origin.url("/echo/form"),
             home=home)  # fmt: skip
    run_curl(proxy.url, "-H", "Transfer-Encoding: chunked", "--data-binary", "chunked body",
             origin.url("/echo/chunked-upload"), home=home)  # fmt: skip
    https = curl_https(
        proxy, tls_origin.url("/echo/secure", host="api.example.test"), confdir, home
    )
    assert https.returncode == 0, https.stderr
    _wait_for_flows(path, 3)
    assert proxy.stop() == 0
    originals = [(r.method, r.target, r.body_sha256) for r in origin.requests]

    result = run_waylay(
        "replay", str(path), "--confdir", str(confdir), "--hosts", str(hosts_file),
        "--hosts-only", "--upstream-ca", str(pki.cert_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "replayed 3 flows" in result.stderr
    # The origins received the same requests, bodies included, once more.
    assert [(r.method, r.target, r.body_sha256) for r in origin.requests] == originals * 2
    assert [r.target for r in tls_origin.requests] == ["/echo/secure"] * 2
    assert tls_origin.handshakes[-1].sni == "api.example.test"  # verified TLS, by name
    chunked = [r for r in origin.requests if r.target == "/echo/chunked-upload"]
    assert chunked[1].header("transfer-encoding") == "chunked"
    listed = _flows_json(run_waylay, path)
    assert [f["replay_of"] for f in listed] == [None, None, None, 1, 2, 3]
    assert [f["url"] for f in listed[3:]] == [f["url"] for f in listed[:3]]
    assert all(f["status"] == 200 for f in listed)


def test_a_request_whose_body_was_not_stored_whole_is_not_replayed(
    start_waylay: StartWaylay,
    origin: Origin,
    run_waylay: RunWaylay,
    hosts_file: Path,
    confdir: Path,
    home: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path), "--body-limit", "100")
    (tmp_path / "big.txt").write_bytes(b"z" * 1000)
    run_curl(proxy.url, "--data-binary", f"@{tmp_path / 'big.txt'}", origin.url("/echo/big"),
             home=home)  # fmt: skip
    _wait_for_flows(path, 1)
    assert proxy.stop() == 0
    result = run_waylay("replay", str(path), "--confdir", str(confdir), "--hosts",
                        str(hosts_file), "--hosts-only")  # fmt: skip
    assert result.returncode == 0
    assert "not stored whole" in result.stderr and "replayed 0 flows" in result.stderr
    assert len(origin.requests) == 1


def test_replay_of_a_missing_file_is_status_2(run_waylay: RunWaylay, tmp_path: Path) -> None:
    result = run_waylay("replay", str(tmp_path / "none.db"))
    assert result.returncode == 2 and "no such flow database" in result.stderr
    assert not (tmp_path / "none.db").exists()
