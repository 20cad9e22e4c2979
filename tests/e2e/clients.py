"""The real clients the tests drive through waylay: curl (a subprocess) and httpx.

Both are pointed at the proxy explicitly and see no proxy variables or rc files from the
machine, so every request they make goes to waylay on loopback and nowhere else; neither
resolves the target's name itself when it talks to an HTTP proxy.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from .waylay_process import clean_env

Curl = Callable[..., subprocess.CompletedProcess[bytes]]


def curl(
    proxy: str, *args: str, home: Path, timeout: float = 30.0, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``curl -x PROXY ARGS``: no ~/.curlrc, silent but errors shown; never raises on status.

    ``input`` is curl's stdin (``--data-binary @-`` sends it).
    """
    command = ["curl", "-q", "-sS", "--max-time", str(timeout), "-x", proxy, *args]
    return subprocess.run(
        command, capture_output=True, env=clean_env(home), timeout=timeout + 15, input=input
    )


def httpx_client(proxy: str, **options: object) -> httpx.Client:
    return httpx.Client(proxy=proxy, trust_env=False, timeout=10.0, **options)  # type: ignore[arg-type]
