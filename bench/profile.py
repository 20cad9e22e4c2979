"""Where waylay spends its time under S1's load: py-spy samples, summarised as text.

py-spy (installed into the bench's own venv, never the project's) samples the proxy while
wrk drives keep-alive requests through it, without stopping it (``--nonblocking``: stopping
a process with ptrace lands on system-call exits and over-charges the lines that make
them). The summary gives shares of all samples, idle ones (the event loop waiting in epoll)
included: by area, by function ("self": the function itself, with the C code and system
calls it makes directly) and, for waylay's own functions, with everything they call. The
collapsed stacks are kept beside ``results.json`` for a flame graph.
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
TOP = 15
_IDLE = "EpollSelector.select (selectors.py)"
_SOCKET_IO = (
    "_SelectorSocketTransport.write (asyncio/selector_events.py)",
    "_SelectorSocketTransport._read_ready__data_received (asyncio/selector_events.py)",
)
# (area, test on a frame) in order: the first that matches a sample's last frame wins.
_AREAS = (
    ("idle: the loop waiting in epoll", lambda f: f == _IDLE),
    ("socket send and recv (the system calls, mostly)", lambda f: f in _SOCKET_IO),
    ("waylay http1/: parsing, serialising, forwarding rules", lambda f: "waylay/http1/" in f),
    ("waylay's other modules: connection, exchange, flow, hooks", lambda f: "waylay/" in f),
    ("objects built by dataclasses (__init__)", lambda f: "(<string>)" in f),
    ("asyncio: the loop, handles, futures, tasks", lambda f: "asyncio/" in f),
    ("everything else", lambda f: True),
)


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

    areas: Counter[str] = Counter()
    for frame, count in own.items():
        areas[next(name for name, test in _AREAS if test(frame))] += count

    def table(counter: Counter[str], heading: str, limit: int | None = top) -> list[str]:
        lines = [heading]
        for name, count in counter.most_common(limit):
            lines.append(f"  {100 * count / total:5.1f}%  {name}")
        return lines

    # Inclusive shares of waylay's own functions: the loop's scaffolding is on every stack.
    ours = Counter({frame: n for frame, n in anywhere.items() if "waylay/" in frame})
    for scaffold in [frame for frame, n in ours.items() if n >= 0.99 * total]:
        del ours[scaffold]
    return "\n".join(
        [
            f"waylay under S1's load: {total} py-spy samples, idle included",
            *table(areas, "by area:", limit=None),
            *table(own, "self (the function, with the C code and system calls it makes):"),
            *table(ours, "total, waylay's functions (with everything they call):"),
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
                "--nonblocking",
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
