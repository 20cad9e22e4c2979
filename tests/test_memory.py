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


def test_trimmer_trims_on_its_interval_and_once_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[None] = []

    def counted_trim() -> bool:
        trims.append(None)
        return True

    trimmer = memory.Trimmer(interval=10.0, gap=1.0)
    monkeypatch.setattr(memory, "trim", counted_trim)
    start = trimmer.last
    steps = [  # (seconds after start, what happens, trims so far)
        (0.5, "tick", 0),
        (9.9, "tick", 0),
        (10.0, "tick", 1),  # the interval
        (10.4, "idle", 1),  # idle, but a trim 0.4 s ago: not yet
        (10.9, "tick", 1),
        (11.0, "tick", 2),  # the gap has passed: the idle trim is done now
        (11.5, "tick", 2),  # and only once
        (13.0, "idle", 3),  # idle long after the last trim: at once
        (13.2, "idle", 3),  # a client closing one connection after another: not again
        (14.0, "tick", 4),
        (23.9, "tick", 4),
        (24.0, "tick", 5),
    ]
    for offset, event, expected in steps:
        getattr(trimmer, event)(start + offset)
        assert len(trims) == expected, (offset, event)
