"""How much of everything one run does: the full benchmark, or the smoke run of the tests."""

from __future__ import annotations

from dataclasses import dataclass, replace

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Settings:
    rounds: int  # every scenario runs every way once per round, in alternating order
    duration: float  # seconds of each timed load run (S1, S2, S3)
    connections: int  # concurrent keep-alive connections of S1 and S2
    load_processes: int  # worker processes of the HTTPS load client (S2, S3, S5's churn)
    lanes: int  # S3 and S5's churn: connections opened at once, one after another each
    bulk_size: int  # bytes of S4's download
    idle_connections: int  # S5: idle keep-alive connections held open at once
    flows: int  # S5: flows through the proxy before its RSS is read again
    churn: int  # S5: intercepted connections opened and closed before RSS is read again
    first_certificate_rounds: int  # S6: connections to a new host, and as many to a cached one
    stored_flows: int  # S8: flows in the database the filters run over
    launches: int  # S7: launches per way per round
    smoke: bool  # a short run that checks everything works; no targets

    def with_overrides(self, rounds: int | None, duration: float | None) -> Settings:
        return replace(
            self,
            rounds=self.rounds if rounds is None else rounds,
            duration=self.duration if duration is None else duration,
        )


FULL = Settings(
    rounds=3,
    duration=10.0,
    connections=50,
    load_processes=2,
    lanes=16,
    bulk_size=GiB,
    idle_connections=1000,
    flows=100_000,
    churn=20_000,
    first_certificate_rounds=200,
    stored_flows=1_000_000,
    launches=3,
    smoke=False,
)

SMOKE = Settings(
    rounds=1,
    duration=1.0,
    connections=50,
    load_processes=2,
    lanes=16,
    bulk_size=64 * MiB,
    idle_connections=300,
    flows=1_000,
    churn=200,
    first_certificate_rounds=20,
    stored_flows=20_000,
    launches=1,
    smoke=True,
)
