"""The scripts of examples/ do what their docstrings promise, in a real `waylay dump -s`.

Each runs as a user runs it (`waylay dump -s examples/X.py --set ...`) with real clients
(httpx, curl) against the suite's origin on loopback: the origin's record says what reached
the server, the client's response what came back, the files what the script wrote.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .clients import curl, httpx_client
from .origin import Origin, pattern_bytes
from .waylay_process import StartWaylay, WaylayProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(start_waylay: StartWaylay, name: str, *settings: str) -> WaylayProcess:
    """`waylay dump -s examples/NAME --set SETTING ...` on a free port."""
    args = ["-s", str(EXAMPLES / name)]
    for setting in settings:
        args += ["--set", setting]
    return start_waylay(*args)


def echoed_headers(response: httpx.Response) -> dict[str, list[str]]:
    """The request headers the origin's /echo/ received, by lowercase name."""
    headers: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return headers


def test_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for script in sorted(EXAMPLES.glob("*.py")):
        assert f"waylay dump -s examples/{script.name}" in readme, script.name


def test_add_header_reaches_the_server_and_the_client(
    start_waylay: StartWaylay, origin: Origin
) -> None:
    proxy = run_example(start_waylay, "add_header.py")
    with httpx_client(proxy.url) as client:
        response = client.post(origin.url("/echo/upload"), content=b"x" * 100_000)
    assert response.status_code == 200
    assert response.headers.get_list("x-waylay") == ["response"]
    assert echoed_headers(response)["x-waylay"] == ["request"]
    assert response.json()["body_length"] == 100_000


def test_fake_api_answers_without_the_server(start_waylay: StartWaylay, origin: Origin) -> None:
    proxy = run_example(start_waylay, "fake_api.py")
    with httpx_client(proxy.url) as client:
        fake = client.get(origin.url("/api/users?page=2"))
        real = client.get(origin.url("/echo/real"))
    assert fake.status_code == 200
    assert fake.headers["content-type"] == "application/json"
    payload = fake.json()
    assert payload["fake"] is True and [user["name"] for user in payload["users"]] == [
        "Ada",
        "Grace",
    ]
    assert real.json()["target"] == "/echo/real"
    # The origin only ever saw the request that was not faked.
    assert [record.target for record in origin.requests] == ["/echo/real"]


def test_fake_api_path_is_an_option(start_waylay: StartWaylay, origin: Origin) -> None:
    proxy = run_example(start_waylay, "fake_api.py", "fake_api_path=/echo/v2/users")
    with httpx_client(proxy.url) as client:
        faked = client.get(origin.url("/echo/v2/users"))
        default = client.get(origin.url("/api/users"))
    assert faked.json()["fake"] is True
    assert default.status_code == 404  # the origin's: the default path is no longer faked
    assert [record.target for record in origin.requests] == ["/api/users"]


def test_block_host_answers_403_for_listed_hosts_only(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = run_example(start_waylay, "block_host.py", "blocked_hosts=other.example.test, api")
    with httpx_client(proxy.url) as client:
        blocked = client.post(
            origin.url("/echo/b", host="api.other.example.test"), content=b"never read"
        )
        allowed = client.get(origin.url("/echo/a"))
        # "api" blocks hosts named api and their subdomains, not every name starting with it.
        api = client.get(origin.url("/echo/api", host="api.example.test"))
    assert blocked.status_code == 403 and blocked.text == "blocked: api.other.example.test\n"
    assert allowed.status_code == 200 and api.status_code == 200
    assert [record.target for record in origin.requests] == ["/echo/a", "/echo/api"]
    # A tunnel to a blocked host is refused before waylay connects anywhere.
    tunnel = curl(proxy.url, "https://other.example.test:1/", home=home)
    assert tunnel.returncode == 56, tunnel.stderr
    assert b"403" in tunnel.stderr


def test_block_host_kill_drops_the_connection(start_waylay: StartWaylay, origin: Origin) -> None:
    proxy = run_example(
        start_waylay, "block_host.py", "blocked_hosts=api.example.test", "block_kill=true"
    )
    with httpx_client(proxy.url) as client:
        with pytest.raises(httpx.TransportError):
            client.get(origin.url("/echo/killed", host="api.example.test"))
        allowed = client.get(origin.url("/echo/a"))
    assert allowed.status_code == 200
    assert [record.target for record in origin.requests] == ["/echo/a"]


def test_log_json_writes_json_bodies_and_only_them(
    start_waylay: StartWaylay, origin: Origin, tmp_path: Path
) -> None:
    log = tmp_path / "bodies.jsonl"
    proxy = run_example(start_waylay, "log_json.py", f"json_log={log}")
    with httpx_client(proxy.url) as client:
        posted = client.post(origin.url("/echo/json"), json={"name": "Ada", "n": [1, 2]})
        image = client.get(origin.url("/image/skipped.png"))
        text = client.post(
            origin.url("/status/200"), content=b"plain", headers={"Content-Type": "text/plain"}
        )
    assert posted.status_code == image.status_code == text.status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    url = origin.url("/echo/json")
    assert lines == [
        {"url": url, "side": "request", "body": {"name": "Ada", "n": [1, 2]}},
        {"url": url, "side": "response", "status": 200, "body": posted.json()},
    ]


def test_slow_down_delays_one_flow_and_not_a_concurrent_one(
    start_waylay: StartWaylay, origin: Origin
) -> None:
    proxy = run_example(start_waylay, "slow_down.py", "delay_ms=1500", "slow_urls=/echo/slow")
    took: dict[str, float] = {}
    finished: list[str] = []

    def fetch(name: str) -> None:
        started = time.monotonic()
        with httpx_client(proxy.url) as client:
            response = client.get(origin.url(f"/echo/{name}"))
        assert response.status_code == 200
        took[name] = time.monotonic() - started
        finished.append(name)

    slow = threading.Thread(target=fetch, args=("slow",))
    slow.start()
    # Once the origin has the slow request, its response is about to be held.
    assert origin.wait_until(lambda: any(r.target == "/echo/slow" for r in origin.requests))
    fetch("fast")
    slow.join(timeout=10)
    assert finished == ["fast", "slow"]
    assert took["slow"] >= 1.5
    assert took["fast"] < 1.0


def test_dump_images_writes_image_bodies_up_to_the_streaming_limit(
    start_waylay: StartWaylay, origin: Origin, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    proxy = run_example(start_waylay, "dump_images.py", f"image_dir={folder}")
    with httpx_client(proxy.url) as client:
        got: dict[str, Any] = {
            path: client.get(origin.url(path)).content
            for path in ("/image/logo.png?n=3000", "/image/photo.gif?n=70000", "/echo/page")
        }
    assert got["/image/logo.png?n=3000"] == pattern_bytes(3000)
    written = {path.name.split("-", 1)[1]: path.read_bytes() for path in folder.iterdir()}
    assert written == {"logo.png": pattern_bytes(3000), "photo.gif": pattern_bytes(70000)}


def test_dump_images_leaves_out_an_image_over_stream_large_bodies(
    start_waylay: StartWaylay, origin: Origin, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    proxy = start_waylay(
        "-s", str(EXAMPLES / "dump_images.py"), "--set", f"image_dir={folder}",
        "--stream-large-bodies", "64k",
    )  # fmt: skip
    with httpx_client(proxy.url) as client:
        large = client.get(origin.url("/image/large.png?n=200000")).content
        small = client.get(origin.url("/image/small.png?n=100")).content
    # The large one streamed to the client whole, past the hook; only the small one is kept.
    assert large == pattern_bytes(200_000) and small == pattern_bytes(100)
    assert [path.name.split("-", 1)[1] for path in folder.iterdir()] == ["small.png"]
