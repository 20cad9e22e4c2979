"""--server-replay FILE: saved responses answer matching requests; the server is not asked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from waylay.serverreplay import MATCH_BODY_LIMIT

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


def _post(proxy: str, url: str, body: bytes, home: Path, *extra: str) -> dict[str, object]:
    result = run_curl(proxy, "--data-binary", "@-", *extra, url, home=home, input=body)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _record_posts(
    start_waylay: StartWaylay, origin: Origin, home: Path, path: Path
) -> list[dict[str, object]]:
    proxy = start_waylay("--save", str(path))
    answers = [_post(proxy.url, origin.url("/echo/form"), body, home) for body in (b"a=1", b"a=2")]
    _wait_for_flows(path, 2)
    assert proxy.stop() == 0
    return answers


def test_request_bodies_choose_the_saved_response(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    one, two = _record_posts(start_waylay, origin, home, path)
    assert one["body_sha256"] == hashlib.sha256(b"a=1").hexdigest()
    seen = len(origin.requests)
    proxy = start_waylay("--server-replay", str(path), "--save", str(tmp_path / "replayed.db"))
    url = origin.url("/echo/form")
    assert _post(proxy.url, url, b"a=2", home) == two
    assert _post(proxy.url, url, b"a=1", home) == one
    # Chunked on the wire, the same payload: the same answer.
    assert _post(proxy.url, url, b"a=1", home, "-H", "Transfer-Encoding: chunked") == one
    assert len(origin.requests) == seen
    # Another body goes to the server, whole.
    fresh = _post(proxy.url, url, b"a=3", home)
    assert fresh["body_sha256"] == hashlib.sha256(b"a=3").hexdigest()
    assert len(origin.requests) == seen + 1


def test_an_answered_body_leaves_the_connection_usable(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    one, two = _record_posts(start_waylay, origin, home, path)
    proxy = start_waylay("--server-replay", str(path))
    url = origin.url("/echo/form")
    # Two POSTs on one connection (curl reuses it across --next), the first chunked.
    result = run_curl(
        proxy.url, "-w", "\n%{num_connects}\n",
        "-H", "Transfer-Encoding: chunked", "--data-binary", "a=1", url, "--next",
        "-x", proxy.url, "-w", "\n%{num_connects}\n", "--data-binary", "a=2", url,
        home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, connects_1, second, connects_2 = result.stdout.decode().strip().split("\n")
    assert (json.loads(first), json.loads(second)) == (one, two)
    assert (connects_1, connects_2) == ("1", "0")


def test_ignore_content_matches_on_method_and_url(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    one, two = _record_posts(start_waylay, origin, home, path)
    seen = len(origin.requests)
    proxy = start_waylay("--server-replay", str(path), "--server-replay-ignore-content")
    url = origin.url("/echo/form")
    assert [_post(proxy.url, url, b"x=%d" % n, home) for n in range(3)] == [one, two, two]
    assert len(origin.requests) == seen


def test_a_body_too_long_to_compare_goes_to_the_server_whole(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "flows.db"
    _record_posts(start_waylay, origin, home, path)
    proxy = start_waylay("--server-replay", str(path), "--server-replay-strict")
    big = bytes(range(256)) * (MATCH_BODY_LIMIT // 256) + b"!"
    result = run_curl(proxy.url, "-i", "--data-binary", "@-", origin.url("/echo/form"),
                      home=home, input=big)  # fmt: skip
    assert result.stdout.startswith(b"HTTP/1.1 404"), result.stdout[:300]
    proxy = start_waylay("--server-replay", str(path))
    answer = _post(proxy.url, origin.url("/echo/form"), big, home)
    assert answer["body_sha256"] == hashlib.sha256(big).hexdigest()
