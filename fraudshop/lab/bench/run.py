"""Run the benchmark: for each system (the detection job, the original design's baseline), a
scratch keyspace and topic, the job started, a warm-up, a latency phase at a fixed offered rate,
then rate steps raised until the job falls behind; then what Cassandra holds is checked."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from fraudshop.config import Config
from fraudshop.config.resources import packaged_file
from fraudshop.io.cassandra.changes import record_profile_change
from fraudshop.io.cassandra.schema import insert_statement
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.jobs.launcher import DETECTION_JOB, start_job, stop_job
from fraudshop.lab.bench.figures import LATENCY, WARM_UP, Measured, Phase, comparison, system_figures
from fraudshop.lab.bench.outcome import LatencySample, alerts_with_latency, correctness
from fraudshop.lab.bench.plan import BenchPlan
from fraudshop.lab.bench.processes import cores_used, cpu_snapshot, job_roles, machine, peak_rss_mb
from fraudshop.lab.bench.progress import read_batches, records_done
from fraudshop.lab.bench.report import write_json, write_plot
from fraudshop.lab.bench.workload import OfferedTransactions, expected_alerts
from fraudshop.lab.console import Step, step
from fraudshop.lab.scratch import scratch_space, stored_rows
from fraudshop.lab.stack.cassandra import cassandra_server
from fraudshop.lab.stack.kafka import kafka_server
from fraudshop.lab.waiting import wait_until
from fraudshop.model.changes import ProfileChange
from fraudshop.model.tables import CHANGE_COLUMNS
from fraudshop.pipeline.stream import QUERY_NAME

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class System:
    job: Path
    #: The streaming queries that must all have finished a record for it to count as processed.
    queries: tuple[str, ...]


#: The original proofshop's design, run beside the detection job.
BASELINE_JOB = packaged_file(__package__ or "fraudshop.lab.bench", "proofshop_baseline.py")
SYSTEMS = {
    "fraudshop": System(DETECTION_JOB, (QUERY_NAME,)),
    "baseline": System(BASELINE_JOB, ("baseline_transaction", "baseline_cust_fraud")),
}


@dataclass
class SystemRun:
    """One system's job on its scratch keyspace and topic, while it runs."""

    name: str
    config: Config
    job: subprocess.Popen[bytes]
    job_log: Path
    offered: OfferedTransactions

    @property
    def progress_file(self) -> Path:
        return Path(self.config.job.progress_file)

    def records_done(self) -> int:
        """Records the job has finished so far; raises if the job stopped."""
        if self.job.poll() is not None:
            raise RuntimeError(f"{self.name}: the job stopped (exit {self.job.returncode}); see {self.job_log}")
        return records_done(read_batches(self.progress_file), SYSTEMS[self.name].queries)

    def wait_until_done(self, timeout: float, shown: Step | None = None) -> float:
        """Wait until the job processed every transaction offered so far; return when (epoch s)."""
        target = len(self.offered.keys)
        done = 0

        def caught_up() -> bool:
            nonlocal done
            done = self.records_done()
            if shown is not None:
                shown.update(f"{self.name}: {done:,} of {target:,} records processed")
            return done >= target

        def report(elapsed: float) -> None:
            log.info("%s: waiting for the job, %d of %d records processed", self.name, done, target)

        try:
            wait_until(caught_up, timeout, f"{self.name}'s job", interval=0.25, every_10_seconds=report)
        except TimeoutError:
            raise TimeoutError(f"{self.name}: {done} of {target} records processed after {timeout:.0f} s") from None
        return time.time()

    def processes(self) -> dict[str, list[int]]:
        return {
            "kafka": [pid for pid in (kafka_server(self.config).pid(),) if pid],
            "cassandra": [pid for pid in (cassandra_server(self.config).pid(),) if pid],
            **job_roles(self.job.pid),
            "bench_producer": [os.getpid()],
        }

    def run_phase(self, name: str, rate: float, seconds: float, drain_timeout: float) -> Phase:
        log.info("%s: %s, %.0f txn/s offered for %.0f s", self.name, name, rate, seconds)
        processes = self.processes()
        cpu_before = cpu_snapshot(processes)
        started = time.time()
        with step(f"{self.name}: {name}, sending {rate:.0f} txn/s for {seconds:.0f} s") as shown:
            sent = send_transactions(self.config.kafka, self.offered, rate, duration=timedelta(seconds=seconds))
            sent_until = time.time()
            done_at = self.wait_until_done(drain_timeout, shown)
            shown.update(f"{self.name}: {name}, {sent:,} sent at {rate:.0f} txn/s, drained")
        cpu = cores_used(cpu_before, cpu_snapshot(processes), done_at - started)
        log.info("%s: %s done %.1f s after the last send; CPU cores %s", self.name, name, done_at - sent_until, cpu)
        return Phase(name, rate, started, sent_until, done_at, sent, cpu)


def run_system(
    base_config: Config, system: str, plan: BenchPlan, work_dir: Path
) -> tuple[dict[str, Any], list[LatencySample]]:
    """Benchmark one system on a scratch keyspace and topic; return its figures and its latency samples."""
    with scratch_space(base_config, f"bench_{system}", work_dir, keep=plan.keep) as (config, session):
        keyspace = config.cassandra.keyspace
        now = datetime.now(UTC)
        for change in plan.workload.changes(now):
            record_profile_change(session, keyspace, change)
        load_change_history(session, keyspace, plan.workload.history(now))
        measured = _drive(config, system, plan, work_dir)
        log.info("%s: reading back %d transactions and their alerts", system, len(measured.offered))
        changed = plan.workload.changed_accounts()
        alerts, samples = alerts_with_latency(session, keyspace, changed)
        offered = set(measured.offered)
        checked = correctness(
            offered,
            stored_rows(session, keyspace, "transaction", "account_no, tranid"),
            expected_alerts(offered, changed),
            alerts,
        )
    log.info("%s: correctness %s", system, checked)
    batches = read_batches(Path(config.job.progress_file))
    return system_figures(SYSTEMS[system].job.stem, plan, measured, batches, samples, checked), samples


def load_change_history(session: Session, keyspace: str, history: Iterator[ProfileChange]) -> None:
    """Bulk-load old changes into cust_change only, as a bank's existing data is: they are not
    new, so the change log (which drives the late-change path) does not list them."""
    insert = session.prepare(insert_statement(keyspace, "cust_change", CHANGE_COLUMNS))
    rows = [tuple(getattr(change, column) for column in CHANGE_COLUMNS) for change in history]
    if rows:
        started = time.monotonic()
        execute_concurrent_with_args(session, insert, rows, concurrency=64, raise_on_first_error=True)
        log.info(
            "loaded %d historical profile changes into cust_change in %.1f s", len(rows), time.monotonic() - started
        )


def _drive(config: Config, system: str, plan: BenchPlan, work_dir: Path) -> Measured:
    """Start the job, warm it up, run the phases, stop it."""
    job_log = work_dir / "job.log"
    offered = OfferedTransactions(plan.workload)
    with open(job_log, "ab") as output:
        job = start_job(config, output, SYSTEMS[system].job)
    run = SystemRun(system, config, job, job_log, offered)
    try:
        log.info("%s: job started (log %s), warming up with %d transactions", system, job_log, plan.warmup_transactions)
        with step(f"{system}: starting the job, {plan.warmup_transactions:,} transactions to warm up") as shown:
            send_transactions(config.kafka, offered, rate=0, limit=plan.warmup_transactions)
            run.wait_until_done(plan.start_timeout_seconds, shown)
        # Spark's first batches of a plan are slow (code generation, JIT): not measured.
        phases = [run.run_phase(WARM_UP, plan.latency_rate, plan.warmup_seconds, plan.drain_timeout_seconds)]
        phases.append(run.run_phase(LATENCY, plan.latency_rate, plan.latency_seconds, plan.drain_timeout_seconds))
        for rate in plan.rates:
            phases.append(run.run_phase(f"step {rate:.0f}/s", rate, plan.step_seconds, plan.drain_timeout_seconds))
            if not phases[-1].as_dict(plan.max_drain_seconds)["kept_up"]:
                log.info("%s: fell behind at %.0f txn/s offered", system, rate)
                break
        peak_rss = {
            role: max((peak_rss_mb(pid) or 0.0 for pid in pids), default=0.0) for role, pids in run.processes().items()
        }
    finally:
        stop_job(job)
    return Measured(phases, peak_rss, offered.keys, job_log)


def run_bench(config: Config, plan: BenchPlan, output: Path) -> dict[str, Any]:
    """Benchmark each system of the plan in turn; write bench.json and bench.png to ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    systems: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[LatencySample]] = {}
    for index, system in enumerate(plan.systems, start=1):
        with step(f"system {index} of {len(plan.systems)}: {system}"):
            systems[system], samples[system] = run_system(config, system, plan, output / "bench-work" / system)
    result = {
        "benchmark": "fraudshop bench",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "plan": asdict(plan),
        "job_settings": {
            "spark_master": config.job.spark_master,
            "trigger_interval": config.job.trigger_interval,
            "shuffle_partitions": config.job.shuffle_partitions,
            "topic_partitions": config.kafka.topic_partitions,
            "max_offsets_per_trigger": config.kafka.max_offsets_per_trigger,
        },
        "systems": systems,
        "comparison": comparison(systems),
        "correctness_passed": all(figures["correctness"]["passed"] for figures in systems.values()),
    }
    write_json(result, output / "bench.json")
    write_plot(systems, samples, output / "bench.png")
    log.info("results in %s and %s", output / "bench.json", output / "bench.png")
    return result
