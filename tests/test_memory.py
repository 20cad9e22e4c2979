"""memory.py: the collector settles once started, and cycles are still collected.

Each case runs in a child interpreter: the settings are process-wide, and the test process's
own collector must stay as pytest expects it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
