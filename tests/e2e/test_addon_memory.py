"""A script that does not read bodies never makes them buffer: 1 GiB through, RSS stays flat.

The issue's bound: a 1 GiB body through a proxy running a requestheaders-only script keeps
peak RSS under 100 MiB. A script with a response hook buffers only up to
--stream-large-bodies and then streams: its peak is that much more, and no more.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .clients import curl as run_curl
from .conftest import StartWaylay
from .origin import Origin

MiB = 1024 * 1024
GiB = 1024 * MiB

HEADERS_ONLY = """\
seen = []


def requestheaders(flow):
    flow.request.headers["X-Seen"] = "1"
    seen.append(flow.request.raw_content)


def responseheaders(flow):
    flow.response.headers["X-Body-Buffered"] = str(flow.response.raw_content is not None)
"""

READS_RESPONSES = """\
from pathlib import Path


def response(flow):
    # The body went by before this hook (over --stream-large-bodies): content is None.
    seen = "streamed" if flow.response.raw_content is None else "buffered"
    Path(__file__).with_name("seen.txt").write_text(seen)
"""


def _download_gib(
    start_waylay: StartWaylay, origin: Origin, home: Path, script: Path, *flags: str
) -> bytes:
    proxy = start_waylay("-s", str(script), "--quiet", *flags)
    result = run_curl(proxy.url, "-o", "/dev/null", "-D", "-", "-w", "%{size_download}",
                      origin.url(f"/bytes/{GiB}"), home=home, timeout=150)  # fmt: skip
    assert result.stdout.endswith(str(GiB).encode()), result.stderr
    peak = proxy.vmhwm()
    print(f"1 GiB through {script.name}: waylay peak RSS {peak / MiB:.1f} MiB")
    assert peak < 100 * MiB
    return result.stdout


@pytest.mark.slow
def test_a_1_gib_download_through_a_headers_only_script_keeps_peak_rss_under_100_mib(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "headers_only.py"
    script.write_text(HEADERS_ONLY)
    head = _download_gib(start_waylay, origin, home, script)
    assert b"x-body-buffered: false" in head.lower()


@pytest.mark.slow
def test_a_1_gib_download_past_a_response_hook_streams_over_the_limit(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "reads_responses.py"
    script.write_text(READS_RESPONSES)
    # A response hook costs up to --stream-large-bodies (the part read before giving up).
    _download_gib(start_waylay, origin, home, script, "--stream-large-bodies", "16m")
    assert (tmp_path / "seen.txt").read_text() == "streamed"


@pytest.mark.slow
def test_a_1_gib_upload_through_a_headers_only_script_keeps_peak_rss_under_100_mib(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "addon.py"
    path.write_text(HEADERS_ONLY)
    proxy = start_waylay("-s", str(path), "--quiet")
    # curl reads the body from stdin and sends it chunked: 1 GiB of zeros from `head`.
    zeros = subprocess.Popen(["head", "-c", str(GiB), "/dev/zero"], stdout=subprocess.PIPE)
    try:
        result = subprocess.run(
            ["curl", "-q", "-sS", "--max-time", "150", "-x", proxy.url, "-T", "-",
             origin.url("/echo/upload")],
            stdin=zeros.stdout, capture_output=True, timeout=170,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
    finally:
        zeros.wait()
    assert b'"body_length": %d' % GiB in result.stdout, result.stderr
    assert origin.requests[-1].header("x-seen") == "1"
    peak = proxy.vmhwm()
    print(f"1 GiB upload through a headers-only script: waylay peak RSS {peak / MiB:.1f} MiB")
    assert peak < 100 * MiB
