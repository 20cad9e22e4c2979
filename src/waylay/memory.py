"""Giving freed memory back to the operating system (glibc's malloc keeps it otherwise).

A proxy frees as much as it allocates: read buffers of up to 256 KiB, TLS state, heads. glibc
serves many of those from its heaps and keeps the freed pages mapped when a live chunk sits
above them, so the RSS of a long-running waylay would creep up with fragmentation although
nothing leaks (ARCHITECTURE.md measured 250-470 MB after 20,000 TLS connections, 47 MB after
`malloc_trim(0)`). `trim` asks glibc to return free pages; a `Trimmer` says when: every ten
seconds, and within a second after a burst of connections closed. A low fixed mmap threshold
would return memory too, but halves bulk throughput (measured: 2.2 -> 0.95 GB/s with
MALLOC_MMAP_THRESHOLD_=131072: every 256 KiB read became an mmap). waylay fixes it above the
read size instead (`keep_reads_off_mmap`), which glibc's own adjustment fails to do.

The cyclic garbage collector is the other cost of a long run. With CPython's default
thresholds it ran a young collection every ~50 requests under keep-alive load and a full one
(every object of every imported module, ~20 ms) several times a second: 5.5 µs per request
and pauses straight into the tail latency (measured under `make bench`'s S1 load, 5 s, with
`gc.callbacks`). `settle_collector`, called once the proxy has started, moves what start-up
made out of the collector's sight (`gc.freeze`) and lets young objects pile up to
`YOUNG_THRESHOLD` first: the data path breaks its own cycles (connection_lost), so nearly
every object dies by reference count before a collection would look at it (0.16 µs per
request, measured the same way). Cycles an addon makes are still collected, a bounded number
of objects later.
"""

from __future__ import annotations

import ctypes
import gc
import time
from collections.abc import Callable
from typing import cast

# Objects the collector lets pile up before a young collection (CPython's default: 700).
YOUNG_THRESHOLD = 20_000


# glibc's mallopt parameters (malloc.h), and the values waylay sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 1024 * 1024  # above a socket read's 256 KiB buffer (asyncio's max_size)
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what glibc's own adjustment would pair with it


def _glibc(name: str, *argtypes: type) -> Callable[..., int] | None:
    try:
        # The process's own symbols, libc's among them: no ctypes.util.find_library, which
        # runs ldconfig in a subprocess (tens of milliseconds of start-up).
        function = getattr(ctypes.CDLL(None), name)  # glibc only; musl and macOS have none
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return cast("Callable[..., int]", function)


_TRIM = _glibc("malloc_trim", ctypes.c_size_t)
_MALLOPT = _glibc("mallopt", ctypes.c_int, ctypes.c_int)


def trim() -> bool:
    """Return free heap pages to the OS; True if any were (False where glibc is absent)."""
    return bool(_TRIM is not None and _TRIM(0))


def keep_reads_off_mmap() -> bool:
    """Fix glibc's mmap threshold above a socket read's buffer; True if glibc took it.

    Every read asyncio makes asks for a 256 KiB buffer and shrinks it to what came. glibc
    serves requests over its mmap threshold (128 KiB at first) with mmap, and raises the
    threshold only when such a block is freed at that size — never, when each is shrunk first
    (mremap). So every read of some connections cost an mmap, an mremap, a munmap and the page
    faults behind them (seen with strace under S2's load: one each per recv). A fixed threshold
    of 1 MiB keeps those buffers in the heap, whose free pages the Trimmer returns.
    """
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        _MALLOPT(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def settle_collector() -> None:
    """Once started: exempt start-up's objects from collection, and collect young ones rarely.

    No collection first: it would hold the ready line back by tens of milliseconds, and what
    start-up left as garbage is a few objects.
    """
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


class Trimmer:
    """When to trim, on the server sweeper's ticks: every ``interval`` seconds, and sooner —
    ``gap`` seconds after the last trim — once ``burst`` connections have closed since it.

    A trim walks the heap (0.1-2 ms), so not on every tick; but what a burst of connections
    freed (TLS state above all) should not wait ten seconds to go back, and a proxy is rarely
    without any connection open, so "idle" cannot be the signal.
    """

    __slots__ = ("_closed", "burst", "gap", "interval", "last")

    def __init__(self, interval: float = 10.0, gap: float = 1.0, burst: int = 100) -> None:
        self.interval = interval
        self.gap = gap
        self.burst = burst
        self.last = time.monotonic()
        self._closed = 0

    def closed(self) -> None:
        """A client connection closed."""
        self._closed += 1

    def tick(self, now: float) -> None:
        since = now - self.last
        if since >= self.interval or (self._closed >= self.burst and since >= self.gap):
            self.last = now
            self._closed = 0
            trim()
