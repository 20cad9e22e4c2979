"""--allow-from and --proxyauth with real clients: who may use the proxy, what others are told."""

from __future__ import annotations

from pathlib import Path

import bcrypt

from .clients import curl as run_curl
from .origin import Origin
from .waylay_process import StartWaylay


def test_a_client_outside_allow_from_gets_a_403_and_nothing_is_forwarded(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = start_waylay("--allow-from", "10.0.0.0/8", "--allow-from", "fd00::/8")
    result = run_curl(proxy.url, "-i", origin.url("/echo/refused"), home=home)
    assert result.stdout.startswith(b"HTTP/1.1 403 Forbidden"), result.stdout[:200]
    assert b"X-Waylay-Error: client-not-allowed" in result.stdout
    assert b"clients from 127.0.0.1 may not use this proxy" in result.stdout
    assert origin.requests == []
    assert proxy.wait_for_stderr("127.0.0.1:")
    assert "may not use this proxy (--allow-from 10.0.0.0/8, fd00::/8): refused" in (
        proxy.stderr_text()
    )
    # The same for a CONNECT: refused before anything is tunnelled.
    tunnel = run_curl(proxy.url, "-p", "-i", origin.url("/echo/tunnel"), home=home)
    assert b"403" in tunnel.stdout.split(b"\r\n", 1)[0], tunnel.stdout[:200]
    assert origin.requests == []


def test_allow_from_admits_the_listed_clients(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = start_waylay("--allow-from", "127.0.0.0/8")
    result = run_curl(proxy.url, origin.url("/echo/allowed"), home=home)
    assert result.returncode == 0 and b'"target": "/echo/allowed"' in result.stdout


def test_listening_everywhere_serves_local_clients_by_default(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    """The default rule off loopback: addresses that are not globally reachable (127/8 is not)."""
    proxy = start_waylay("--listen", "*:0")
    result = run_curl(proxy.url, origin.url("/echo/default"), home=home)
    assert result.returncode == 0 and b'"target": "/echo/default"' in result.stdout


def test_proxyauth_asks_for_credentials_and_strips_them(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = start_waylay("--proxyauth", "ada:open sesame")
    none = run_curl(proxy.url, "-i", origin.url("/echo/none"), home=home)
    assert none.stdout.startswith(b"HTTP/1.1 407 Proxy Authentication Required"), none.stdout
    assert b'Proxy-Authenticate: Basic realm="waylay"' in none.stdout
    assert b"X-Waylay-Error: proxy-auth-required" in none.stdout
    wrong = run_curl(proxy.url, "-i", "-U", "ada:guess", origin.url("/echo/wrong"), home=home)
    assert wrong.stdout.startswith(b"HTTP/1.1 407"), wrong.stdout
    assert b"they were not accepted" in wrong.stdout
    assert origin.requests == []
    ok = run_curl(proxy.url, "-U", "ada:open sesame", origin.url("/echo/ok"), home=home)
    assert b'"target": "/echo/ok"' in ok.stdout, ok.stdout
    # The credentials were for waylay: the server never sees them.
    assert origin.requests[-1].header("Proxy-Authorization") is None
    # A CONNECT with them is served; without them it is not.
    tunnel = run_curl(proxy.url, "-p", "-U", "ada:open sesame", origin.url("/echo/t"), home=home)
    assert b'"target": "/echo/t"' in tunnel.stdout, tunnel.stdout
    refused = run_curl(proxy.url, "-p", "-i", origin.url("/echo/t2"), home=home)
    assert b"407" in refused.stdout.split(b"\r\n", 1)[0], refused.stdout[:200]


def test_proxyauth_from_an_htpasswd_file(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"ada:{hashed}\n")
    proxy = start_waylay("--proxyauth", f"@{htpasswd}")
    for _ in range(2):  # the second is remembered, not hashed again
        ok = run_curl(proxy.url, "-U", "ada:pw", origin.url("/echo/ht"), home=home)
        assert b'"target": "/echo/ht"' in ok.stdout, ok.stdout
    bad = run_curl(proxy.url, "-i", "-U", "ada:nope", origin.url("/echo/ht"), home=home)
    assert bad.stdout.startswith(b"HTTP/1.1 407")
