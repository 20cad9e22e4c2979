"""Where waylay spends its time under S1's load (or S2's, S3's): py-spy samples, as text.

py-spy (installed into the bench's own venv, never the project's) samples the proxy while
wrk (S1) or the HTTPS load client (S2, S3) drives it, without stopping it
(``--nonblocking``: stopping a process with ptrace lands on system-call exits and
over-charges the lines that make them), running threads only, per thread. The summary gives
each thread's share of the samples, then for the event loop's thread its shares by area, by
function ("self": the function itself, with the C code and system calls it makes directly)
and, for waylay's own functions, with everything they call; for any other thread (the flow
store's writer) its top functions. The collapsed stacks are kept beside ``results.json`` for a
flame graph.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from bench import deps
from bench.errors import BenchError
from bench.origin import SMALL_PATH
from bench.scenarios.base import Env
from bench.tlsload import settings_load
from bench.ways import WAYLAY, Route
from bench.wrk import run_wrk

_RATE = 250  # samples per second
_LINE_NUMBER = re.compile(r":\d+\)$")
TOP = 15
_MAIN = "MainThread"
# Under every stack of the loop's thread (or of most: a sample taken without stopping the
# process may miss the outermost frames).
_SCAFFOLD = {"<module> (waylay/__main__.py)", "main (waylay/cli.py)", "run_dump (waylay/cli.py)"}
_IDLE = "EpollSelector.select (selectors.py)"
_SOCKET_IO = (
    "_SelectorSocketTransport.write (asyncio/selector_events.py)",
    "_SelectorSocketTransport._read_ready__data_received (asyncio/selector_events.py)",
)
# (area, test on a frame) in order: the first that matches a sample's last frame wins.
_AREAS = (
    ("the loop in epoll_wait", lambda f: f == _IDLE),
    ("socket send and recv (the system calls, mostly)", lambda f: f in _SOCKET_IO),
    ("TLS: OpenSSL's work behind the ssl module", lambda f: "(ssl.py)" in f),
    ("waylay certs/: forging, the certificate store", lambda f: "waylay/certs/" in f),
    ("waylay http1/: parsing, serialising, forwarding rules", lambda f: "waylay/http1/" in f),
    ("waylay's other modules: connection, exchange, flow, hooks", lambda f: "waylay/" in f),
    ("objects built by dataclasses (__init__)", lambda f: "(<string>)" in f),
    ("asyncio: the loop, handles, futures, tasks", lambda f: "asyncio/" in f),
    ("everything else", lambda f: True),
)


def _frame(raw: str) -> str:
    """``handle (waylay/exchange.py:120)`` -> ``handle (waylay/exchange.py)``."""
    return _LINE_NUMBER.sub(")", raw.strip())


_THREAD = re.compile(r"^thread \(\d+\): (?P<name>.*)$")


def _stacks(collapsed: str) -> Iterator[tuple[str, list[str], int]]:
    """(thread name, frames outermost first, sample count) per line of py-spy's raw output."""
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [frame.strip() for frame in stack.split(";") if frame.strip()]
        thread = _THREAD.match(frames[0]) if frames else None
        name = thread["name"] if thread else "?"
        frames = [_frame(frame) for frame in frames[1:]] if thread else frames
        if frames:
            yield name, frames, int(count_text)


def _s1(env: Env, route: Route) -> None:
    run_wrk(
        route,
        SMALL_PATH,
        connections=env.settings.connections,
        duration=env.settings.duration,
        core=env.cores.load,
        home=env.home,
    )


def _s2(env: Env, route: Route) -> None:
    settings_load(env, route, "keepalive")


def _s3(env: Env, route: Route) -> None:
    settings_load(env, route, "fresh")


# The scenarios whose load can be profiled: each drives waylay as the scenario does.
_LOADS = {"S1": _s1, "S2": _s2, "S3": _s3}
PROFILED = tuple(_LOADS)


def summarise(collapsed: str, scenario: str = "S1", top: int = TOP) -> str:
    per_thread: Counter[str] = Counter()
    own: dict[str, Counter[str]] = defaultdict(Counter)
    anywhere: Counter[str] = Counter()  # the main thread's only
    for thread, frames, count in _stacks(collapsed):
        per_thread[thread] += count
        own[thread][frames[-1]] += count
        if thread == _MAIN:
            for frame in set(frames):
                anywhere[frame] += count
    total = sum(per_thread.values())
    main = per_thread[_MAIN]
    if total == 0 or main == 0:
        return "py-spy: no samples of the event loop's thread"

    def table(counter: Counter[str], heading: str, of: int, limit: int | None = top) -> list[str]:
        lines = [heading]
        for name, count in counter.most_common(limit):
            lines.append(f"  {100 * count / of:5.1f}%  {name}")
        return lines

    areas: Counter[str] = Counter()
    for frame, count in own[_MAIN].items():
        areas[next(name for name, test in _AREAS if test(frame))] += count
    # Inclusive shares of waylay's own functions: the loop's scaffolding is on every stack.
    ours = Counter(
        {frame: n for frame, n in anywhere.items() if "waylay/" in frame and frame not in _SCAFFOLD}
    )
    lines = [
        f"waylay under {scenario}'s load: {total} py-spy samples of running threads",
        *table(per_thread, "by thread (share of all samples):", total),
        f"the event loop's thread ({_MAIN}), shares of its samples — by area:",
        *table(areas, "", main, limit=None)[1:],
        *table(own[_MAIN], "self (the function, with the C code and system calls it makes):", main),
        *table(ours, "total, waylay's functions (with everything they call):", main),
    ]
    for thread in per_thread:
        if thread != _MAIN:
            lines += table(own[thread], f"thread {thread}, self:", per_thread[thread], limit=5)
    return "\n".join(lines)


def profile_waylay(env: Env, workdir: Path, scenario: str, keep: Path | None = None) -> str:
    py_spy = deps.ensure_py_spy()
    output = workdir / f"waylay-{scenario.lower()}.collapsed"
    with env.launcher.start(WAYLAY) as route:
        recorder = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--nonblocking",
                "--threads",
                "--format",
                "raw",
                "--rate",
                str(_RATE),
                "--duration",
                # The HTTPS load client opens its connections first: a few seconds more.
                str(round(env.settings.duration) + 5),
                "--pid",
                str(route.proxy_pid),
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _LOADS[scenario](env, route)
        _, stderr = recorder.communicate(timeout=env.settings.duration + 60)
    if recorder.returncode != 0 or not output.exists():
        raise BenchError(f"py-spy failed ({recorder.returncode}): {stderr}")
    if keep is not None:
        shutil.copyfile(output, keep)
    return summarise(output.read_text(), scenario)
