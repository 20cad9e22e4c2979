"""Bodies stream with back-pressure: 300 MiB each way at 20 MiB/s, proxy peak RSS < 100 MiB.

The slow side is real — curl's ``--limit-rate`` downloading, an origin reading at 20 MiB/s
uploading — so a proxy that reads ahead without waiting for its writer would hold most of
the body in memory, and ``VmHWM`` (peak resident set, /proc/PID/status) would show it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from .clients import curl
from .origin import SLOW_READ_RATE, MiB, Origin, pattern_chunks, pattern_sha256
from .waylay_process import WaylayProcess, clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SIZE = 300 * MiB
PEAK_RSS_LIMIT = 100 * MiB


def test_300_mib_download_to_a_slow_client(
    origin: Origin, waylay: WaylayProcess, home: Path
) -> None:
    command = [
        "curl",
        "-q",
        "-sS",
        "--max-time",
        "100",
        "--limit-rate",
        "20M",
        "-x",
        waylay.url,
        "-o",
        "-",
        origin.url(f"/download/{SIZE}"),
    ]
    reader = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(home)
    )
    assert reader.stdout is not None
    digest, received = hashlib.sha256(), 0
    while piece := reader.stdout.read(1 * MiB):
        digest.update(piece)
        received += len(piece)
    assert reader.wait(10) == 0, reader.stderr.read() if reader.stderr else ""
    peak = waylay.vmhwm()
    print(f"download: waylay peak RSS {peak / MiB:.1f} MiB")
    assert received == SIZE
    assert digest.hexdigest() == pattern_sha256(SIZE)
    assert peak < PEAK_RSS_LIMIT, f"waylay peak RSS {peak / MiB:.1f} MiB"


def test_300_mib_upload_to_a_slow_origin(
    origin: Origin, waylay: WaylayProcess, home: Path, tmp_path: Path
) -> None:
    upload = tmp_path / "upload.bin"
    with upload.open("wb") as file:
        for piece in pattern_chunks(SIZE):
            file.write(piece)
    result = curl(waylay.url, "-T", str(upload), origin.url("/slow-read"), home=home, timeout=100)
    assert result.returncode == 0, result.stderr
    peak = waylay.vmhwm()
    print(f"upload: waylay peak RSS {peak / MiB:.1f} MiB")
    answer = json.loads(result.stdout)
    assert answer["body_length"] == SIZE
    assert answer["body_sha256"] == pattern_sha256(SIZE)
    # The origin really was the slow side: it took about SIZE / 20 MiB/s to read.
    assert answer["seconds"] >= 0.8 * SIZE / SLOW_READ_RATE
    assert peak < PEAK_RSS_LIMIT, f"waylay peak RSS {peak / MiB:.1f} MiB"
