"""The measurements of a run: medians, ratios, the table on stdout, ``results.json``."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any

from bench.scenarios.base import Sample, Scenario
from bench.ways import DIRECT, MITMDUMP, WAYLAY, WAYS

NA = "—"
DISTURBED = 10.0  # % of the proxy's core used by others during one measurement
HEADER = ("scenario", "metric", DIRECT, WAYLAY, MITMDUMP, "waylay/mitmdump", "waylay/direct")


class Results:
    def __init__(self, scenarios: Sequence[Scenario]) -> None:
        self.scenarios = list(scenarios)
        self._by_name = {scenario.name: scenario for scenario in scenarios}
        self.samples: dict[str, dict[str, list[Sample]]] = {
            scenario.name: {way: [] for way in scenario.ways} for scenario in scenarios
        }
        # Per measurement: the share of the proxy's core that others used meanwhile (%).
        self.other_load: list[dict[str, Any]] = []

    def has(self, scenario: str) -> bool:
        return scenario in self.samples

    def add(self, scenario: str, way: str, sample: Sample, other_load: float = 0.0) -> None:
        self.samples[scenario][way].append(sample)
        self.other_load.append(
            {
                "scenario": scenario,
                "way": way,
                "round": len(self.samples[scenario][way]),
                "percent": round(other_load, 1),
            }
        )

    def other_load_line(self) -> str:
        """One line on how quiet the proxy's core was: the worst measurement, and the median."""
        if not self.other_load:
            return "no measurements"
        worst = max(self.other_load, key=lambda entry: entry["percent"])
        typical = median(entry["percent"] for entry in self.other_load)
        verdict = "quiet" if worst["percent"] < DISTURBED else "DISTURBED: rerun when quiet"
        return (
            f"other load on the proxy's core: median {typical:.0f}%, worst {worst['percent']:.0f}% "
            f"({worst['scenario']} {worst['way']}, round {worst['round']}) — {verdict}"
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
                values = [self.median(scenario.name, metric.key, way) for way in WAYS]
                rows.append(
                    (
                        scenario.name,
                        metric.label,
                        *(format_number(value) for value in values),
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
            out[scenario.name] = {"title": scenario.title, "metrics": metrics}
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
