"""memory.py: the collector settles once started, and cycles are still collected.

Each case runs in a child interpreter: the settings are process-wide, and the test process's
own collector must stay as pytest expects it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from waylay import memory
from waylay.memory import YOUNG_THRESHOLD


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_settle_collector_freezes_start_up_and_raises_the_young_threshold() -> None:
    out = _run(
        """
        import gc
        from waylay.memory import YOUNG_THRESHOLD, settle_collector
        before = gc.get_threshold()
        settle_collector()
        after = gc.get_threshold()
        print(before[0], after[0] == YOUNG_THRESHOLD, after[1:] == before[1:],
              gc.get_freeze_count() > 1000)
        """
    )
    default, raised, older_kept, frozen = out.split()
    assert int(default) < 20_000  # CPython's own (700): the test would prove nothing otherwise
    assert (raised, older_kept, frozen) == ("True", "True", "True")


def test_cycles_made_after_settling_are_still_collected() -> None:
    # Nothing calls gc.collect(): only the raised threshold may collect the cycles.
    out = _run(
        """
        import gc, weakref
        from waylay.memory import YOUNG_THRESHOLD, settle_collector
        settle_collector()
        class Node:
            pass
        freed = []
        for i in range(3 * YOUNG_THRESHOLD):
            a, b = Node(), Node()
            a.other, b.other = b, a  # a cycle: reference counting never frees it
            weakref.finalize(a, freed.append, i)
        print(len(freed))
        """
    )
    assert int(out) > YOUNG_THRESHOLD


def test_trimmer_trims_on_its_interval_and_soon_after_a_burst_of_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[None] = []

    def counted_trim() -> bool:
        trims.append(None)
        return True

    trimmer = memory.Trimmer(interval=10.0, gap=1.0, burst=3)
    monkeypatch.setattr(memory, "trim", counted_trim)
    start = trimmer.last
    steps = [  # (seconds after start, connections closed just before, trims so far)
        (0.5, 0, 0),
        (9.9, 2, 0),  # two closes: not a burst
        (10.0, 0, 1),  # the interval
        (10.4, 5, 1),  # a burst, but a trim 0.4 s ago: not yet
        (11.0, 0, 2),  # the gap has passed: now
        (11.5, 0, 2),  # and only once
        (13.0, 2, 2),
        (13.5, 1, 3),  # the third close since the last trim makes a burst
        (14.0, 9, 3),  # a burst within the gap
        (14.5, 0, 4),
        (24.4, 0, 4),
        (24.5, 0, 5),  # the interval again
    ]
    for offset, closes, expected in steps:
        for _ in range(closes):
            trimmer.closed()
        trimmer.tick(start + offset)
        assert len(trims) == expected, offset


_READS = """
import ctypes, socket, sys
from waylay.memory import keep_reads_off_mmap

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    assert keep_reads_off_mmap()
a, b = socket.socketpair()
held = []
before = libc.mallinfo2().hblks
for _ in range(20):
    a.send(b"x" * 1024)
    held.append(b.recv(256 * 1024))  # as asyncio reads: a 256 KiB buffer, shrunk to 1 KiB
print(libc.mallinfo2().hblks - before)
"""


def test_socket_reads_are_not_each_an_mmap_once_the_threshold_is_fixed() -> None:
    def mmapped_reads(mode: str) -> int:
        result = subprocess.run(
            [sys.executable, "-c", _READS, mode], capture_output=True, text=True, check=True
        )
        return int(result.stdout)

    assert mmapped_reads("glibc's own") == 20  # what waylay's reads cost before
    assert mmapped_reads("fixed") == 0
