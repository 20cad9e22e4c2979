"""S9: what an addon hook costs — S1's load with each proxy running one trivial ``request``
hook, ``bench/addons/trivial_request.py`` (``def request(flow): pass``).

waylay runs with ``-s`` that file, mitmdump with ``-s`` the same file; "direct" has no proxy
and is S1's again. The cost of the hook is the difference to S1 in the same run: S9's median
CPU µs/request minus S1's, and the ratio of the two rates (``hook_cost``, printed after the
table and written to ``results.json`` as ``addon_hook``).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING, Any

from bench import deps
from bench.scenarios.s1_keepalive import KeepAlive
from bench.ways import PROXIES

if TYPE_CHECKING:
    from bench.report import Results

ADDON = deps.BENCH_DIR / "addons" / "trivial_request.py"
_CPU, _RATE = "cpu_per_request", "rps"


class AddonHook(KeepAlive):
    name = "S9"
    title = "S1 with one trivial `request` hook (-s bench/addons/trivial_request.py)"
    waylay_options = ("-s", str(ADDON))
    mitmdump_options = ("-s", str(ADDON))


@dataclass(frozen=True)
class HookCost:
    """One proxy's S9 against its S1 of the same run."""

    way: str
    without_hook: float  # S1's median proxy CPU µs/request
    with_hook: float  # S9's
    rate_ratio: float  # S9's median requests/s over S1's
    per_round: tuple[float, ...]  # S9's µs/request minus S1's, round by round

    @property
    def added(self) -> float:
        """What the hook adds per request, in µs of the proxy's CPU."""
        return self.with_hook - self.without_hook

    def line(self) -> str:
        rounds = ", ".join(f"{added:+.1f}" for added in self.per_round)
        return (
            f"{self.way}: {self.added:+.1f} µs/request (S1 {self.without_hook:.1f}, "
            f"S9 {self.with_hook:.1f}; per round {rounds}, median "
            f"{median(self.per_round):+.1f}); requests/s S9/S1 = {self.rate_ratio:.3f}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "s1_cpu_per_request": self.without_hook,
            "s9_cpu_per_request": self.with_hook,
            "added_cpu_per_request": self.added,
            "added_per_round": list(self.per_round),
            "rps_ratio_s9_s1": self.rate_ratio,
        }


def hook_cost(results: Results) -> list[HookCost]:
    """Each proxy's cost of the hook, when S1 and S9 both ran."""
    if not (results.has("S1") and results.has(AddonHook.name)):
        return []
    costs = []
    for way in PROXIES:
        without = results.median("S1", _CPU, way)
        with_hook = results.median(AddonHook.name, _CPU, way)
        rate, rate_with_hook = (
            results.median("S1", _RATE, way),
            results.median(AddonHook.name, _RATE, way),
        )
        if without is None or with_hook is None or not rate or rate_with_hook is None:
            continue
        pairs = zip(results.samples["S1"][way], results.samples[AddonHook.name][way], strict=False)
        per_round = tuple(s9[_CPU] - s1[_CPU] for s1, s9 in pairs if _CPU in s1 and _CPU in s9)
        costs.append(HookCost(way, without, with_hook, rate_with_hook / rate, per_round))
    return costs
