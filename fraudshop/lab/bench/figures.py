"""A system's figures from what its run measured: per phase throughput, latency and batch
breakdown; the capacity (a backlog drained), the fixed cost of a small batch, the recovery from a
kill -9; the headline figures and the issue's targets. Every key and phase name is named here once."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudshop.lab.bench.outcome import LatencySample
from fraudshop.lab.bench.progress import Batch, breakdown
from fraudshop.lab.bench.stats import summary
from fraudshop.lab.bench.workload import TransactionKey

# The phases of a streaming system's run, in order.
WARM_UP = "warm-up"
SMALL_BATCHES = "small batches"
RECOVERY = "recovery"
BACKLOG = "backlog"

# The headline figures (a streaming system's; the ceiling's is CEILING_RATE).
CAPACITY = "capacity_txn_per_s"
CEILING_RATE = "ceiling_rows_per_s"
CAPACITY_RATIO = "capacity_ratio"
LATENCY = "latency_s"
FIXED_COST = "batch_fixed_cost_s"
RECOVERY_TIME = "recovery_s"
STEP_COST = "step_ms_p50"
#: The job's steps whose cost per batch the headline gives: the fraud-prevention rules and the similarity
#: score beside the profile-change rule (``alerts``) and the transactions' write.
COSTED_STEPS = ("rules", "similarity", "alerts", "transactions")
HEADLINE_KEYS = (CAPACITY, CEILING_RATE, CAPACITY_RATIO, LATENCY, FIXED_COST, RECOVERY_TIME, STEP_COST)

#: A batch of at most this many Kafka records is a small batch: its length is (nearly) all fixed cost.
SMALL_BATCH_MAX_RECORDS = 100

#: What each figure means, written into bench.json beside them.
DEFINITIONS = {
    CEILING_RATE: "the ceiling system: rows / seconds of ONE Spark Cassandra Connector write of as many transaction "
    "rows as the backlog, from a cached and materialised DataFrame, with the job's spark-submit settings, after an "
    "untimed warm-up write of a tenth as many other rows",
    CAPACITY: "the backlog (pre-loaded on the topic while the job was stopped) / seconds from the start of the "
    "restarted job's first batch with records (Spark's progress timestamp) to the end of the batch that "
    "completed its last record (every query of the job)",
    CAPACITY_RATIO: f"{CAPACITY} / {CEILING_RATE} of the same run",
    STEP_COST: "by offered rate (txn/s): the median ms per micro-batch of the job's steps during that rate's phase: "
    "rules (the fraud-prevention rules: read the batch's rules and history, judge, notify, write the hits), "
    "similarity (read the known cases and the accounts' history, score every transaction, write the scores and "
    "the hits), alerts "
    "(the profile-change rule) and transactions (parse and write them); the steps run side by side, so a batch "
    "takes about the longest of them, not their sum",
    LATENCY: "by offered rate (txn/s): Kafka record timestamp → WRITETIME of the alert's cust_fraud row, over the "
    "alerts of the transactions sent during that rate's phase (after the warm-up)",
    FIXED_COST: f"median Spark triggerExecution (s) of the micro-batches with 1-{SMALL_BATCH_MAX_RECORDS} Kafka "
    "records that started during the small-batch phase; for a job of several queries, the slowest query's median",
    RECOVERY_TIME: "kill -9 of the job's whole process group while it streams at the lowest latency rate, restarted "
    "at once on the same config and checkpoint: seconds from the kill to the end of the first batch with records "
    "that started after it (every query of the job)",
}


@dataclass(frozen=True)
class Target:
    name: str
    #: Where the value is in the headline figures.
    path: tuple[str, ...]
    bound: float
    at_least: bool = False

    def checked(self, headline: Mapping[str, Any]) -> dict[str, Any]:
        """The target, its value and whether it was met (never met when not measured)."""
        value: Any = headline
        for key in self.path:
            value = value.get(key) if isinstance(value, Mapping) else None
        met = value is not None and (value >= self.bound if self.at_least else value <= self.bound)
        return {"target": f"{'>=' if self.at_least else '<='} {self.bound:g}", "value": value, "met": met}


def rate_key(rate: float) -> str:
    """How an offered rate names its latency figures: "2000" for 2,000 txn/s."""
    return f"{rate:g}"


def latency_phase(rate: float) -> str:
    return f"latency {rate_key(rate)}/s"


#: The issue's targets, on fraudshop's headline figures.
TARGETS = (
    Target(CAPACITY_RATIO, (CAPACITY_RATIO,), 0.6, at_least=True),
    Target("latency_2000_p95_s", (LATENCY, rate_key(2000), "p95"), 1.5),
    Target("latency_2000_p99_s", (LATENCY, rate_key(2000), "p99"), 2.0),
    Target("latency_200_p95_s", (LATENCY, rate_key(200), "p95"), 1.0),
    Target(FIXED_COST, (FIXED_COST,), 0.5),
    Target(RECOVERY_TIME, (RECOVERY_TIME,), 15.0),
)


@dataclass(frozen=True)
class Phase:
    name: str
    #: Offered txn/s (0: as fast as the producers go).
    offered_rate: float
    #: Epoch seconds: the first send, the last send, and when the job had processed them all.
    started: float
    sent_until: float
    done_at: float
    sent: int
    cpu_cores: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "started_at": round(self.started, 3),
            "sent_until": round(self.sent_until, 3),
            "done_at": round(self.done_at, 3),
            "offered_rate": self.offered_rate,
            "sent": self.sent,
            "send_rate": round(self.sent / max(self.sent_until - self.started, 1e-3), 1),
            "drain_seconds": round(self.done_at - self.sent_until, 2),
            # Valid transactions stored, with detection done, per second from the phase's first send.
            "throughput_tps": round(self.sent / max(self.done_at - self.started, 1e-3), 1),
            "cpu_cores": self.cpu_cores,
        }


@dataclass(frozen=True)
class Measured:
    """What one streaming system's run measured while its job ran."""

    phases: list[Phase]
    peak_rss_mb: dict[str, float]
    offered: list[TransactionKey]
    job_log: Path
    #: Epoch seconds of the kill -9.
    killed_at: float
    #: Epoch seconds when the job was started on the pre-loaded backlog, and the backlog's size.
    backlog_started: float
    backlog: int


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def drain(batches: Sequence[Batch], queries: Sequence[str], since: datetime, records: int) -> dict[str, Any]:
    """The backlog drain of a job started at ``since`` on ``records`` pre-loaded records: from its
    first batch with records to the end of the batch in which every query reached ``records``."""
    after = sorted((b for b in batches if b.started_at >= since and b.query in queries), key=lambda b: b.started_at)
    with_records = [b for b in after if b.kafka_records]
    figures: dict[str, Any] = {"records": records, "batches": len(with_records), CAPACITY: None}
    if not with_records:
        return figures
    first = with_records[0].started_at
    done: list[datetime] = []
    for query in queries:
        total = 0
        for batch in (b for b in after if b.query == query):
            total += batch.kafka_records
            if total >= records:
                done.append(batch.ended_at)
                break
        else:
            return figures  # this query never finished the backlog
    seconds = (max(done) - first).total_seconds()
    return {
        **figures,
        "first_batch_started_at": first.isoformat(),
        "last_record_done_at": max(done).isoformat(),
        "seconds": round(seconds, 2),
        CAPACITY: round(records / seconds, 1) if seconds > 0 else None,
    }


def fixed_cost(batches: Sequence[Batch], queries: Sequence[str], since: datetime, until: datetime) -> dict[str, Any]:
    """The median length (s) of the small batches (1 to SMALL_BATCH_MAX_RECORDS records) that
    started in [since, until), per query; the job's is its slowest query's (None if one had none)."""
    per_query: dict[str, Any] = {}
    for query in queries:
        lengths = [
            b.duration_ms.get("triggerExecution", 0.0) / 1000
            for b in batches
            if b.query == query and 1 <= b.kafka_records <= SMALL_BATCH_MAX_RECORDS and since <= b.started_at < until
        ]
        per_query[query] = {
            "batches": len(lengths),
            "median_s": round(statistics.median(lengths), 3) if lengths else None,
        }
    medians = [figures["median_s"] for figures in per_query.values()]
    return {FIXED_COST: max(medians) if medians and None not in medians else None, "by_query": per_query}


def recovery_seconds(batches: Sequence[Batch], queries: Sequence[str], killed_at: datetime) -> float | None:
    """Seconds from the kill to the end of the first batch with records that started after it, the
    slowest query's (None while a query has none)."""
    ends = []
    for query in queries:
        after = [b.ended_at for b in batches if b.query == query and b.kafka_records and b.started_at > killed_at]
        if not after:
            return None
        ends.append(min(after))
    return round((max(ends) - killed_at).total_seconds(), 2) if ends else None


def system_figures(
    job: str,
    queries: Sequence[str],
    measured: Measured,
    batches: list[Batch],
    samples: list[LatencySample],
    checked: dict[str, Any],
) -> dict[str, Any]:
    """Per phase: throughput, latency and batch breakdown; then the system's headline figures."""
    phases = []
    latency: dict[str, Any] = {}
    step_cost: dict[str, Any] = {}
    small: Phase | None = None
    for phase in measured.phases:
        latencies = [s.latency for s in samples if phase.started <= s.event_at < phase.sent_until]
        phases.append(
            {
                **phase.as_dict(),
                "latency_s": summary(latencies),
                "batches": breakdown(batches, _moment(phase.started), _moment(phase.done_at)),
            }
        )
        if phase.name == latency_phase(phase.offered_rate):
            latency[rate_key(phase.offered_rate)] = phases[-1]["latency_s"]
            step_cost[rate_key(phase.offered_rate)] = step_medians(phases[-1]["batches"])
        if phase.name == SMALL_BATCHES:
            small = phase
    capacity = drain(batches, queries, _moment(measured.backlog_started), measured.backlog)
    cost = (
        fixed_cost(batches, queries, _moment(small.started), _moment(small.done_at))
        if small
        else {FIXED_COST: None, "by_query": {}}
    )
    return {
        "job": job,
        "job_log": str(measured.job_log),
        "transactions_offered": len(measured.offered),
        CAPACITY: capacity[CAPACITY],
        LATENCY: latency,
        FIXED_COST: cost[FIXED_COST],
        RECOVERY_TIME: recovery_seconds(batches, queries, _moment(measured.killed_at)),
        STEP_COST: step_cost,
        "capacity": capacity,
        "fixed_cost": cost,
        "killed_at": _moment(measured.killed_at).isoformat(),
        "peak_rss_mb": measured.peak_rss_mb,
        "correctness": checked,
        "phases": phases,
    }


def with_ceiling(figures: dict[str, Any], ceiling_rows_per_s: float | None) -> dict[str, Any]:
    """A streaming system's figures with the run's ceiling and its capacity's ratio to it."""
    capacity = figures.get(CAPACITY)
    ratio = round(capacity / ceiling_rows_per_s, 3) if capacity and ceiling_rows_per_s else None
    return {**figures, CEILING_RATE: ceiling_rows_per_s, CAPACITY_RATIO: ratio}


def step_medians(by_query: Mapping[str, Any]) -> dict[str, Any] | None:
    """The median ms of each of :data:`COSTED_STEPS` in a phase's batches: None for a system without the
    job's steps (the baseline's two queries report none)."""
    steps = [figures["step_ms"] for figures in by_query.values() if figures["step_ms"]]
    if len(steps) != 1:
        return None
    return {step: steps[0][step]["p50"] if step in steps[0] else None for step in COSTED_STEPS}


def headline(figures: Mapping[str, Any] | None) -> dict[str, Any]:
    """A system's headline figures (each None when the system did not run)."""
    return {key: (figures or {}).get(key) for key in HEADLINE_KEYS}


def targets(headline_figures: Mapping[str, Any]) -> dict[str, Any]:
    return {target.name: target.checked(headline_figures) for target in TARGETS}


def comparison(systems: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """fraudshop's figures against the baseline's (empty unless both ran; a ratio is None when a figure is missing)."""
    if not {"fraudshop", "baseline"} <= systems.keys():
        return {}
    ours, theirs = systems["fraudshop"], systems["baseline"]
    return {
        "capacity_over_baseline": round(ours[CAPACITY] / theirs[CAPACITY], 2)
        if ours[CAPACITY] and theirs[CAPACITY]
        else None,
        "latency_p95_s": {
            name: {rate: figures["p95"] for rate, figures in systems[name][LATENCY].items()}
            for name in ("fraudshop", "baseline")
        },
    }
