"""The measurements of a run: medians, ratios, the table on stdout, ``results.json``."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any

from bench.disturbance import Disturbance
from bench.scenarios.base import Sample, Scenario
from bench.ways import DIRECT, MITMDUMP, WAYLAY, WAYS

NA = "—"
NO_EQUIVALENT = "n/a"
DISTURBED = 10.0  # % of the proxy's core used by others during one measurement
HEADER = ("scenario", "metric", DIRECT, WAYLAY, MITMDUMP, "waylay/mitmdump", "waylay/direct")


class Results:
    def __init__(self, scenarios: Sequence[Scenario]) -> None:
        self.scenarios = list(scenarios)
        self._by_name = {scenario.name: scenario for scenario in scenarios}
        self.samples: dict[str, dict[str, list[Sample]]] = {
            scenario.name: {way: [] for way in scenario.ways} for scenario in scenarios
        }
        # Per measurement: the shares of the two cores that others used meanwhile (%).
        self.disturbance: list[dict[str, Any]] = []

    def has(self, scenario: str) -> bool:
        return scenario in self.samples

    def add(self, scenario: str, way: str, sample: Sample, others: Disturbance) -> None:
        self.samples[scenario][way].append(sample)
        self.disturbance.append(
            {
                "scenario": scenario,
                "way": way,
                "round": len(self.samples[scenario][way]),
                "proxy_core": round(others.proxy_core, 1),
                "load_core": round(others.load_core, 1),
            }
        )

    def disturbance_line(self) -> str:
        """How quiet the cores were: the worst measurement, and the median."""
        if not self.disturbance:
            return "no measurements"

        def worst(entry: dict[str, Any]) -> float:
            return float(max(entry["proxy_core"], entry["load_core"]))

        bad = max(self.disturbance, key=worst)
        typical = median(worst(entry) for entry in self.disturbance)
        disturbed = [entry for entry in self.disturbance if worst(entry) >= DISTURBED]
        verdict = (
            "quiet"
            if not disturbed
            else f"DISTURBED in {len(disturbed)} of {len(self.disturbance)} measurements"
        )
        return (
            f"others' use of a core during a measurement: median {typical:.0f}%, worst "
            f"{worst(bad):.0f}% ({bad['scenario']} {bad['way']}, round {bad['round']}) — {verdict}"
        )

    def median(self, scenario: str, metric: str, way: str) -> float | None:
        values = [s[metric] for s in self.samples[scenario].get(way, []) if metric in s]
        return median(values) if values else None

    def ratio(self, scenario: str, metric: str, way: str, against: str) -> float | None:
        """The ratio of the medians, or None when either side has no number."""
        top, bottom = self.median(scenario, metric, way), self.median(scenario, metric, against)
        if top is None or not bottom:
            return None
        return top / bottom

    def rows(self) -> list[tuple[str, ...]]:
        rows = []
        for scenario in self.scenarios:
            for metric in scenario.metrics:
                cells = [
                    NO_EQUIVALENT
                    if way in scenario.no_equivalent
                    else format_number(self.median(scenario.name, metric.key, way))
                    for way in WAYS
                ]
                rows.append(
                    (
                        scenario.name,
                        metric.label,
                        *cells,
                        format_ratio(self.ratio(scenario.name, metric.key, WAYLAY, MITMDUMP)),
                        format_ratio(self.ratio(scenario.name, metric.key, WAYLAY, DIRECT)),
                    )
                )
        return rows

    def table(self) -> str:
        """A Markdown table: readable on a terminal, pasted as it is into docs/performance.md."""
        rows = [HEADER, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]

        def line(row: Sequence[str]) -> str:
            cells = [
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            return "| " + " | ".join(cells) + " |"

        rule = (
            "|"
            + "|".join(
                "-" * (width + 1) + (":" if i >= 2 else "-") for i, width in enumerate(widths)
            )
            + "|"
        )
        return "\n".join([line(HEADER), rule, *(line(row) for row in rows[1:])])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for scenario in self.scenarios:
            metrics = {}
            for metric in scenario.metrics:
                metrics[metric.key] = {
                    "label": metric.label,
                    "higher_is_better": metric.higher_is_better,
                    "rounds": {
                        way: [s.get(metric.key) for s in samples]
                        for way, samples in self.samples[scenario.name].items()
                    },
                    "median": {
                        way: self.median(scenario.name, metric.key, way) for way in scenario.ways
                    },
                    "waylay/mitmdump": self.ratio(scenario.name, metric.key, WAYLAY, MITMDUMP),
                    "waylay/direct": self.ratio(scenario.name, metric.key, WAYLAY, DIRECT),
                }
            out[scenario.name] = {
                "title": scenario.title,
                "no_equivalent": list(scenario.no_equivalent),
                "metrics": metrics,
            }
        return out


def format_number(value: float | None) -> str:
    if value is None:
        return NA
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_ratio(value: float | None) -> str:
    return NA if value is None else f"{format_number(value)}x"
