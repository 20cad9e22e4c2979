"""Giving freed memory back to the operating system (glibc's malloc keeps it otherwise).

A proxy frees as much as it allocates: read buffers of up to 256 KiB, TLS state, heads. glibc
serves many of those from its heaps and keeps the freed pages mapped when a live chunk sits
above them, so the RSS of a long-running waylay would creep up with fragmentation although
nothing leaks (ARCHITECTURE.md measured 250-470 MB after 20,000 TLS connections, 47 MB after
`malloc_trim(0)`). `trim` asks glibc to return free pages; the server's sweeper calls it every
ten seconds. A fixed mmap threshold would do it too, but halves bulk throughput (measured:
2.2 -> 0.95 GB/s with MALLOC_MMAP_THRESHOLD_=131072), so waylay does not set one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        function = libc.malloc_trim  # glibc only; musl and macOS have none
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return free heap pages to the OS; True if any were (False where glibc is absent)."""
    return bool(_TRIM is not None and _TRIM(0))
