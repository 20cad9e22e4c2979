"""Where waylay spends its time under S1's load: py-spy samples, summarised as text.

py-spy (installed into the bench's own venv, never the project's) samples the proxy while
wrk drives keep-alive requests through it. The summary lists the functions with the most
samples of their own ("self") and the most samples anywhere on the stack ("total"), as
shares of all samples, idle ones (the event loop waiting in epoll) included; the collapsed
stacks are kept beside ``results.json`` for a flame graph.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from bench import deps
from bench.errors import BenchError
from bench.origin import SMALL_PATH
from bench.scenarios.base import Env
from bench.ways import WAYLAY
from bench.wrk import run_wrk

_RATE = 250  # samples per second
_LINE_NUMBER = re.compile(r":\d+\)$")
TOP = 18


def _frame(raw: str) -> str:
    """``handle (waylay/exchange.py:120)`` -> ``handle (waylay/exchange.py)``."""
    return _LINE_NUMBER.sub(")", raw.strip())


def summarise(collapsed: str, top: int = TOP) -> str:
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(frame) for frame in stack.split(";") if frame.strip()]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            anywhere[frame] += count
    if total == 0:
        return "py-spy: no samples"

    def table(counter: Counter[str], heading: str) -> list[str]:
        lines = [heading]
        for frame, count in counter.most_common(top):
            lines.append(f"  {100 * count / total:5.1f}%  {frame}")
        return lines

    # Inclusive shares of waylay's own functions: the loop's scaffolding is on every stack.
    ours = Counter({frame: n for frame, n in anywhere.items() if "waylay/" in frame})
    ours.pop("<module> (waylay/__main__.py)", None)
    for scaffold in [frame for frame, n in ours.items() if n >= 0.99 * total]:
        del ours[scaffold]
    return "\n".join(
        [
            f"waylay under S1's load: {total} py-spy samples (idle included)",
            *table(own, "self (the function itself; its system calls included):"),
            *table(ours, "total, waylay's functions (with what they call):"),
        ]
    )


def profile_waylay(env: Env, workdir: Path, keep: Path | None = None) -> str:
    py_spy = deps.ensure_py_spy()
    output = workdir / "waylay-s1.collapsed"
    with env.launcher.start(WAYLAY) as route:
        recorder = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--idle",
                "--format",
                "raw",
                "--rate",
                str(_RATE),
                "--duration",
                str(round(env.settings.duration) + 2),
                "--pid",
                str(route.proxy_pid),
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        run_wrk(
            route,
            SMALL_PATH,
            connections=env.settings.connections,
            duration=env.settings.duration,
            core=env.cores.load,
            home=env.home,
        )
        _, stderr = recorder.communicate(timeout=env.settings.duration + 60)
    if recorder.returncode != 0 or not output.exists():
        raise BenchError(f"py-spy failed ({recorder.returncode}): {stderr}")
    if keep is not None:
        shutil.copyfile(output, keep)
    return summarise(output.read_text())
