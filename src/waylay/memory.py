"""Giving freed memory back to the operating system (glibc's malloc keeps it otherwise).

A proxy frees as much as it allocates: read buffers of up to 256 KiB, TLS state, heads. glibc
serves many of those from its heaps and keeps the freed pages mapped when a live chunk sits
above them, so the RSS of a long-running waylay would creep up with fragmentation although
nothing leaks (ARCHITECTURE.md measured 250-470 MB after 20,000 TLS connections, 47 MB after
`malloc_trim(0)`). `trim` asks glibc to return free pages; a `Trimmer` says when: every ten
seconds, and as soon as the proxy goes idle (its last client connection closed), when what a
burst of connections freed is all free at once. A fixed mmap threshold would do it too, but
halves bulk throughput (measured: 2.2 -> 0.95 GB/s with MALLOC_MMAP_THRESHOLD_=131072), so
waylay does not set one.

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
import ctypes.util
import gc
import time
from collections.abc import Callable

# Objects the collector lets pile up before a young collection (CPython's default: 700).
YOUNG_THRESHOLD = 20_000


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


def settle_collector() -> None:
    """Once started: exempt start-up's objects from collection, and collect young ones rarely."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


class Trimmer:
    """When to trim: every ``interval`` seconds (the server's sweeper ticks), and once the
    proxy goes idle — at once, unless the last trim was less than ``gap`` ago (then at the
    tick after that): a trim walks the heap (0.1-2 ms), and a client that opens and closes
    connections one after another makes the proxy idle hundreds of times a second."""

    __slots__ = ("_idle_pending", "gap", "interval", "last")

    def __init__(self, interval: float = 10.0, gap: float = 1.0) -> None:
        self.interval = interval
        self.gap = gap
        self.last = time.monotonic()
        self._idle_pending = False

    def idle(self, now: float) -> None:
        """The last client connection closed."""
        self._idle_pending = True
        self.tick(now)

    def tick(self, now: float) -> None:
        since = now - self.last
        if since >= self.interval or (self._idle_pending and since >= self.gap):
            self.last = now
            self._idle_pending = False
            trim()
