"""curl as the bulk client: one large download, its size and its wall time.

Over HTTPS curl sends ``CONNECT`` to the proxy and trusts the route's CA only (``--cacert``);
it sends no SNI when the URL names an address (mitmdump's and direct's ``127.0.0.1``).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.process import clean_env, pinned
from bench.ways import Route


@dataclass(frozen=True)
class Download:
    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6


def download(
    route: Route, path: str, *, expected: int, core: int, home: Path, https: bool = False
) -> Download:
    """One download over HTTP, or over HTTPS (through the proxy's CONNECT, trusting its CA)."""
    command = ["curl", "-q", "-sS", "--noproxy", "", "-o", "/dev/null", "--max-time", "300"]
    if route.proxy:
        command += ["--proxy", route.proxy]
    if https:
        command += ["--cacert", str(route.trusted_ca)]
    url = route.https_url(path) if https else route.url(path)
    command += ["-w", "%{http_code} %{size_download} %{time_total}", url]
    started = time.monotonic()
    result = subprocess.run(
        pinned(core, command), capture_output=True, text=True, env=clean_env(home), timeout=320
    )
    wall = time.monotonic() - started
    fields = result.stdout.split()
    if result.returncode != 0 or len(fields) != 3 or fields[0] != "200":
        raise BenchError(f"curl through {route.way} failed: {result.stdout} {result.stderr}")
    size, seconds = int(fields[1]), float(fields[2])
    if size != expected:
        raise BenchError(f"curl through {route.way}: {size} bytes, expected {expected}")
    return Download(bytes=size, seconds=min(seconds, wall))
