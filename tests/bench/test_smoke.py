"""The benchmark's smoke run (issue 8): ``bench/run.py --smoke`` as a process, every scenario
with its numbers in every column, so that ``make bench`` cannot rot between real runs.

One short round of each scenario through nginx, waylay and mitmdump: well under 90 s once
``make bench-deps`` (a prerequisite of ``make test``) has installed nginx, wrk and mitmproxy.
``make test`` runs it in the first of its two suites only (the second passes
``--ignore=tests/bench``): the benchmark measures the proxy, not the Python of the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = {"S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"}
# The rows that have a number without a proxy; the others are about the proxy itself.
WITH_DIRECT = {
    ("S1", "requests/s"),
    ("S1", "p50 latency (ms)"),
    ("S1", "p99 latency (ms)"),
    ("S2", "requests/s"),
    ("S2", "p50 latency (ms)"),
    ("S2", "p99 latency (ms)"),
    ("S3", "connections/s"),
    ("S3", "p50 connection to response (ms)"),
    ("S4", "MB/s, HTTP"),
    ("S4", "MB/s, HTTPS"),
    ("S6", "new host, connection to first byte (ms)"),
    ("S6", "cached host, connection to first byte (ms)"),
    ("S9", "requests/s"),
    ("S9", "p50 latency (ms)"),
    ("S9", "p99 latency (ms)"),
}
# Scenarios that only waylay can run: nothing to compare in the other two columns.
WAYLAY_ONLY = {"S8"}
SMOKE_BUDGET = 90.0  # seconds, installs excluded


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def table_rows(stdout: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in stdout.splitlines()
        if line.startswith("| S")
    ]


def test_smoke_run_fills_every_column(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--json", str(results)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"

    rows = table_rows(run.stdout)
    assert {row[0] for row in rows} == SCENARIOS, run.stdout
    for scenario, metric, direct, waylay, mitmdump, *_ratios in rows:
        if scenario in WAYLAY_ONLY:
            assert number(waylay) > 0, f"{scenario} {metric} waylay: {waylay}"
            assert (direct, mitmdump) == ("n/a", "n/a"), f"{scenario} {metric}: {direct} {mitmdump}"
            continue
        for way, cell in (("waylay", waylay), ("mitmdump", mitmdump)):
            value = number(cell)  # a number, or ValueError names the cell
            # Memory growth may well be 0 (or below, after a trim); so may S6's difference.
            if not metric.startswith(("growth", "added")):
                assert value > 0, f"{scenario} {metric} {way}: {cell}"
        if (scenario, metric) in WITH_DIRECT:
            assert number(direct) > 0, f"{scenario} {metric} direct: {direct}"
        else:
            assert direct == "—", f"{scenario} {metric} direct: {direct}"
    assert {(row[0], row[1]) for row in rows} >= WITH_DIRECT, run.stdout

    document = json.loads(results.read_text())
    assert set(document["scenarios"]) == SCENARIOS
    assert document["targets"] == []  # a smoke run checks no target
    # S9 against S1: what the trivial request hook adds, for each proxy.
    assert set(document["addon_hook"]) == {"waylay", "mitmdump"}
    for way, cost in document["addon_hook"].items():
        assert cost["s9_cpu_per_request"] > 0, f"{way}: {cost}"
        assert cost["rps_ratio_s9_s1"] > 0, f"{way}: {cost}"
        assert len(cost["added_per_round"]) == 1, f"{way}: {cost}"
    assert "The cost of an addon hook" in run.stdout, run.stdout
    assert document["seconds"] < SMOKE_BUDGET, f"smoke run took {document['seconds']} s"
