"""``bench/run.py``: install what is missing, start the origin, run the rounds, report.

Every scenario runs every way once per round; the order of the ways rotates from round to
round, so that a neighbour's load or a warming machine falls on all of them alike. The
medians of the rounds and their ratios are printed as a table and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import deps, machine
from bench.disturbance import Disturbance, Ours
from bench.errors import BenchError
from bench.origin import Origin
from bench.profile import PROFILED, profile_waylay
from bench.report import Results, format_number
from bench.scenarios import Env, Sample, Scenario, all_scenarios
from bench.scenarios.s9_addon_hook import ADDON, hook_cost
from bench.settings import FULL, SMOKE, Settings
from bench.targets import check
from bench.ways import Launcher, Programs

DEFAULT_JSON = deps.BENCH_DIR / "results.json"
BUSY_LOAD = 0.7  # 1-minute load average above which the machine is not quiet


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="waylay side by side with mitmdump and with no proxy (issue 8).",
    )
    parser.add_argument("--rounds", type=int, help=f"rounds (default {FULL.rounds}; smoke 1)")
    parser.add_argument(
        "--duration", type=float, help=f"seconds per timed load run (default {FULL.duration:g})"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="one short round of each scenario, no targets"
    )
    parser.add_argument("--only", metavar="S1,S4", help="run only these scenarios")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"where results go ({DEFAULT_JSON})"
    )
    parser.add_argument(
        "--waylay-python",
        default=sys.executable,
        help="the Python that runs waylay (default: the one running the benchmark)",
    )
    parser.add_argument(
        "--waylay-src",
        type=Path,
        default=deps.REPO / "src",
        help="the source tree whose waylay is measured (default: this checkout's src)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="S1",
        choices=PROFILED,
        help="after the rounds, profile waylay under S1's load (or S2's, S3's) with py-spy "
        "and summarise",
    )
    parser.add_argument(
        "--install-only", action="store_true", help="install what is missing, then stop"
    )
    return parser.parse_args(argv)


def select(scenarios: list[Scenario], only: str | None) -> list[Scenario]:
    if not only:
        return scenarios
    wanted = {name.strip().upper() for name in only.split(",") if name.strip()}
    known = {scenario.name for scenario in scenarios}
    if unknown := wanted - known:
        raise BenchError(f"--only: no scenario {', '.join(sorted(unknown))} (known: {known})")
    return [scenario for scenario in scenarios if scenario.name in wanted]


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def summary(scenario: Scenario, sample: Sample) -> str:
    return ", ".join(
        f"{metric.label} {format_number(sample[metric.key])}"
        for metric in scenario.metrics
        if metric.key in sample
    )


def run_rounds(env: Env, scenarios: list[Scenario]) -> Results:
    results = Results(scenarios)
    ours = Ours(
        proxies=env.launcher.proxy_cpu,
        stopped_proxies=env.launcher.stopped_proxy_cpu,
        origin=env.origin.cpu_seconds,
    )
    for scenario in scenarios:
        started = time.monotonic()
        if said := scenario.prepare(env):
            say(f"{scenario.name}: {said} ({time.monotonic() - started:.1f} s)")
    for round_index in range(env.settings.rounds):
        for scenario in scenarios:
            shift = round_index % len(scenario.ways)
            for way in scenario.ways[shift:] + scenario.ways[:shift]:
                started = time.monotonic()
                with Disturbance(env.cores, ours) as others:
                    sample = scenario.run(env, way)
                results.add(scenario.name, way, sample, others)
                say(
                    f"round {round_index + 1}/{env.settings.rounds} {scenario.name} {way} "
                    f"({time.monotonic() - started:.1f} s): {summary(scenario, sample)}; "
                    f"others used {others.proxy_core:.0f}% of the proxy's core, "
                    f"{others.load_core:.0f}% of the load core"
                )
    return results


def _commit(src: Path) -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes) when ``src`` is its own."""
    if not src.is_relative_to(deps.REPO):
        return "outside this checkout"

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(deps.REPO), *args], capture_output=True, text=True
        ).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain") else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so that nginx and the proxies are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _main(args)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    settings: Settings = (SMOKE if args.smoke else FULL).with_overrides(args.rounds, args.duration)
    scenarios = select(all_scenarios(settings), args.only)
    mitmproxy = deps.ensure_all()
    if mitmproxy.note:
        say(f"NOTE: {mitmproxy.note}")
    if args.install_only:
        return 0
    cores = machine.pick_cores()
    if cores.shared:
        say("NOTE: one core only: proxy and load share it; ratios mean less")
    machine.pin_self(cores.load)
    machine.raise_open_file_limit()
    load_before = machine.loadavg()
    if load_before[0] > BUSY_LOAD:
        say(f"NOTE: the machine is busy (load {load_before[0]:.2f}): numbers may be disturbed")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="waylay-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o711)  # nginx's worker (nobody, www-data) must reach its files inside
        home = workdir / "home"
        home.mkdir()
        programs = Programs(args.waylay_python, args.waylay_src.resolve(), mitmproxy.mitmdump)
        with Origin(workdir / "origin", cores.load, settings.bulk_size) as origin:
            launcher = Launcher(programs, origin, workdir, cores.proxy)
            launcher.warm_up()
            env = Env(settings, origin, launcher, cores, home)
            results = run_rounds(env, scenarios)
            profile = None
            if args.profile:
                profile = profile_waylay(
                    env,
                    workdir,
                    args.profile,
                    keep=args.json.with_name(f"waylay-{args.profile.lower()}.collapsed"),
                )
    load_after = machine.loadavg()
    elapsed = time.monotonic() - started

    print(results.table())
    verdicts = [] if settings.smoke else check(results)
    if verdicts:
        print()
        print("Targets (issue 8; waylay records every flow, as the targets ask):")
        for verdict in verdicts:
            print(f"  {verdict.line()}")
    hook = hook_cost(results)
    if hook:
        print()
        print(
            f"The cost of an addon hook (S9 against S1, same run; "
            f"-s {ADDON.relative_to(deps.REPO)}), proxy CPU:"
        )
        for cost in hook:
            print(f"  {cost.line()}")
    if profile:
        print()
        print(profile)
    print()
    print(results.disturbance_line())
    print(
        f"{settings.rounds} round(s) in {elapsed:.0f} s; load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f}; mitmproxy {mitmproxy.version} "
        f"on Python {mitmproxy.python}{'; ' + mitmproxy.note if mitmproxy.note else ''}"
    )

    facts = machine.describe(
        waylay_python=args.waylay_python,
        nginx=deps.tool("nginx"),
        mitmproxy={
            "version": mitmproxy.version,
            "python": mitmproxy.python,
            "note": mitmproxy.note,
        },
    )
    document: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "settings": vars(settings),
        "machine": facts,
        "waylay": {
            "src": str(args.waylay_src.resolve()),
            "commit": _commit(args.waylay_src.resolve()),
        },
        "cores": vars(cores),
        "load_average": {"before": load_before, "after": load_after},
        "seconds": round(elapsed, 1),
        "scenarios": results.to_json(),
        "disturbance": results.disturbance,
        "targets": [
            {"scenario": v.target.scenario, "target": v.target.text, "value": v.value, "met": v.met}
            for v in verdicts
        ],
        "addon_hook": {cost.way: cost.to_json() for cost in hook},
        "profile": profile,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0
