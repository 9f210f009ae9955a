"""A system's figures from what its run measured: per phase throughput, capacity, latency and
batch breakdown; the headline figures; fraudshop against the baseline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudshop.lab.bench.outcome import LatencySample
from fraudshop.lab.bench.plan import BenchPlan
from fraudshop.lab.bench.progress import Batch, breakdown
from fraudshop.lab.bench.stats import summary
from fraudshop.lab.bench.workload import TransactionKey

WARM_UP = "warm-up"
LATENCY = "latency"


@dataclass(frozen=True)
class Phase:
    name: str
    offered_rate: float
    #: Epoch seconds: the first send, the last send, and when the job had processed them all.
    started: float
    sent_until: float
    done_at: float
    sent: int
    cpu_cores: dict[str, float]

    def as_dict(self, max_drain_seconds: float) -> dict[str, Any]:
        drain = self.done_at - self.sent_until
        return {
            "name": self.name,
            "started_at": round(self.started, 3),
            "offered_rate": self.offered_rate,
            "sent": self.sent,
            "send_rate": round(self.sent / (self.sent_until - self.started), 1),
            "drain_seconds": round(drain, 2),
            # Valid transactions stored, with detection done, per second from the phase's first send.
            "throughput_tps": round(self.sent / (self.done_at - self.started), 1),
            "kept_up": drain <= max_drain_seconds,
            "cpu_cores": self.cpu_cores,
        }


@dataclass(frozen=True)
class Measured:
    """What one system's run measured while its job ran."""

    phases: list[Phase]
    peak_rss_mb: dict[str, float]
    offered: list[TransactionKey]
    job_log: Path


def system_figures(
    job: str,
    plan: BenchPlan,
    measured: Measured,
    batches: list[Batch],
    samples: list[LatencySample],
    checked: dict[str, Any],
) -> dict[str, Any]:
    """Per phase: throughput, capacity, latency and batch breakdown; then the headline figures."""
    phases = []
    for phase in measured.phases:
        since, until = datetime.fromtimestamp(phase.started, UTC), datetime.fromtimestamp(phase.done_at, UTC)
        latencies = [s.latency for s in samples if phase.started <= s.event_at < phase.sent_until]
        queries = breakdown(batches, since, until)
        rates = [query["records_per_busy_second"] for query in queries.values()]
        phases.append(
            {
                **phase.as_dict(plan.max_drain_seconds),
                # The slowest query's: a record is processed once every query has processed it.
                "capacity_tps": min(rates) if rates and None not in rates else None,
                "latency_s": summary(latencies),
                "batches": queries,
            }
        )
    scored = [phase for phase in phases if phase["name"] != WARM_UP]
    kept_up = [phase["send_rate"] for phase in scored if phase["kept_up"]]
    return {
        "job": job,
        "job_log": str(measured.job_log),
        "transactions_offered": len(measured.offered),
        # Event→alert latency at the fixed offered rate.
        "latency_s": next(phase["latency_s"] for phase in scored if phase["name"] == LATENCY),
        # The highest offered rate the job kept up with, as actually sent.
        "sustained_throughput_tps": max(kept_up, default=0.0),
        # The most records per second of batch time seen (when behind, batches run back to back).
        "capacity_tps": max((phase["capacity_tps"] or 0.0 for phase in scored), default=0.0),
        "peak_rss_mb": measured.peak_rss_mb,
        "correctness": checked,
        "phases": phases,
    }


def comparison(systems: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """fraudshop's figures over the baseline's (empty unless both ran; a ratio is None when the baseline's is 0)."""
    if not {"fraudshop", "baseline"} <= systems.keys():
        return {}
    ours, theirs = systems["fraudshop"], systems["baseline"]

    def ratio(key: str) -> float | None:
        return round(ours[key] / theirs[key], 2) if theirs[key] else None

    return {
        "sustained_throughput_ratio": ratio("sustained_throughput_tps"),
        "capacity_ratio": ratio("capacity_tps"),
        "latency_p95_s": {name: figures["latency_s"]["p95"] for name, figures in systems.items()},
    }
