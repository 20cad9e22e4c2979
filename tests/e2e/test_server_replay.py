"""--server-replay FILE: saved responses answer matching requests; the server is not asked."""

from __future__ import annotations

from pathlib import Path

from .clients import curl as run_curl
from .origin import Origin
from .test_save import _wait_for_flows
from .waylay_process import StartWaylay


def _record(start_waylay: StartWaylay, origin: Origin, home: Path, path: Path) -> list[bytes]:
    proxy = start_waylay("--save", str(path))
    bodies = []
    for url in ("/echo/same", "/echo/same", "/bytes/3000"):
        result = run_curl(proxy.url, origin.url(url), home=home)
        assert result.returncode == 0, result.stderr
        bodies.append(result.stdout)
    _wait_for_flows(path, 3)
    assert proxy.stop() == 0
    return bodies


def test_saved_responses_answer_and_the_server_is_not_contacted(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    first, second, data = _record(start_waylay, origin, home, path)
    assert first != second  # each /echo names the connection that served it
    seen = len(origin.requests)
    proxy = start_waylay("--server-replay", str(path))
    answers = [run_curl(proxy.url, "-i", origin.url("/echo/same"), home=home).stdout
               for _ in range(3)]  # fmt: skip
    bodies = [answer.partition(b"\r\n\r\n")[2] for answer in answers]
    # In the order they were saved; the last one again once all were served.
    assert bodies == [first, second, second]
    assert b"Content-Length: %d" % len(first) in answers[0]
    assert run_curl(proxy.url, origin.url("/bytes/3000"), home=home).stdout == data
    assert len(origin.requests) == seen  # nothing reached the server
    # A request nothing matches goes to the server.
    fresh = run_curl(proxy.url, origin.url("/echo/new"), home=home)
    assert fresh.returncode == 0 and len(origin.requests) == seen + 1
    assert proxy.wait_for_stdout(f"GET {origin.url('/echo/same')} 200")


def test_strict_server_replay_refuses_what_it_does_not_know(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    _record(start_waylay, origin, home, path)
    seen = len(origin.requests)
    proxy = start_waylay("--server-replay", str(path), "--server-replay-strict")
    result = run_curl(proxy.url, "-i", origin.url("/echo/unknown"), home=home)
    assert result.stdout.startswith(b"HTTP/1.1 404")
    assert b"X-Waylay-Error: not-in-server-replay" in result.stdout
    assert len(origin.requests) == seen
