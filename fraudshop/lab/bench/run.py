"""Run the benchmark. The ceiling: one connector write of the backlog's worth of rows. Then for each
streaming system (the detection job, the original design's baseline), on a scratch keyspace and
topic: the job started, a warm-up, a latency phase per offered rate, a small-batch phase, a kill -9
and restart while it streams; then, the job stopped, the backlog pre-loaded on the topic and
drained by the restarted job; then what Cassandra holds is checked against everything sent."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Event
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from fraudshop.config import Config
from fraudshop.config.resources import packaged_file
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.changes import record_profile_change
from fraudshop.io.cassandra.rules import RuleStore
from fraudshop.io.cassandra.schema import insert_statement
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.jobs.launcher import (
    DETECTION_JOB,
    ClassArchiveError,
    prepare_class_archive,
    signal_job,
    start_job,
    stop_job,
)
from fraudshop.lab.bench.ceiling import run_ceiling
from fraudshop.lab.bench.figures import (
    BACKLOG,
    CEILING_RATE,
    DEFINITIONS,
    RECOVERY,
    SMALL_BATCHES,
    WARM_UP,
    Measured,
    Phase,
    comparison,
    headline,
    latency_phase,
    recovery_seconds,
    system_figures,
    targets,
    with_ceiling,
)
from fraudshop.lab.bench.outcome import LatencySample, alerts_with_latency, correctness
from fraudshop.lab.bench.plan import CEILING, STREAMING_SYSTEMS, BenchPlan
from fraudshop.lab.bench.preload import preload
from fraudshop.lab.bench.processes import cores_used, cpu_snapshot, job_roles, machine, peak_rss_mb
from fraudshop.lab.bench.progress import read_batches, records_done
from fraudshop.lab.bench.publish import source_commit
from fraudshop.lab.bench.report import write_json, write_plot
from fraudshop.lab.bench.workload import OfferedTransactions, expected_alerts
from fraudshop.lab.console import Step, step
from fraudshop.lab.scratch import scratch_space, stored_rows
from fraudshop.lab.stack.cassandra import cassandra_server
from fraudshop.lab.stack.kafka import kafka_server
from fraudshop.lab.waiting import wait_until
from fraudshop.model.changes import ProfileChange
from fraudshop.model.rules import RuleDefinition
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
    """One system's job on its scratch keyspace and topic, while it runs (restarted in between)."""

    name: str
    config: Config
    job_log: Path
    offered: OfferedTransactions
    job: subprocess.Popen[bytes] | None = None

    @property
    def progress_file(self) -> Path:
        return Path(self.config.job.progress_file)

    @property
    def queries(self) -> tuple[str, ...]:
        return SYSTEMS[self.name].queries

    def start(self) -> None:
        with open(self.job_log, "ab") as output:
            self.job = start_job(self.config, output, SYSTEMS[self.name].job)
        log.info("%s: job started (log %s)", self.name, self.job_log)

    def stop(self) -> None:
        if self.job is not None:
            stop_job(self.job)
            self.job = None

    def _running(self) -> subprocess.Popen[bytes]:
        if self.job is None or self.job.poll() is not None:
            code = None if self.job is None else self.job.returncode
            raise RuntimeError(f"{self.name}: the job is not running (exit {code}); see {self.job_log}")
        return self.job

    def records_done(self) -> int:
        """Records the job has finished so far (every run of it); raises if the job stopped."""
        self._running()
        return records_done(read_batches(self.progress_file), self.queries)

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
            **job_roles(self._running().pid),
            "bench_producer": [os.getpid()],
        }

    def peak_rss(self) -> dict[str, float]:
        return {
            role: max((peak_rss_mb(pid) or 0.0 for pid in pids), default=0.0) for role, pids in self.processes().items()
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
        cpu = cores_used(cpu_before, processes, done_at - started)
        log.info("%s: %s done %.1f s after the last send; CPU cores %s", self.name, name, done_at - sent_until, cpu)
        return Phase(name, rate, started, sent_until, done_at, sent, cpu)

    def run_recovery(self, plan: BenchPlan) -> tuple[Phase, float]:
        """Stream at the recovery rate; once the job reported ``batches_before_kill`` batches with
        records, kill -9 its whole process group (as the fault drill's kill-job does) and restart it
        at once; stream on until it completed a batch after the kill. Returns the phase and when
        the kill struck (epoch s)."""
        rate = plan.recovery_rate
        processes = self.processes()
        cpu_before = cpu_snapshot(processes)
        started = time.time()
        since = datetime.fromtimestamp(started, UTC)
        stop_sending = Event()
        with (
            step(f"{self.name}: {RECOVERY}, sending {rate:.0f} txn/s, kill -9 and restart") as shown,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-recovery-sender") as sender,
        ):
            sending = sender.submit(send_transactions, self.config.kafka, self.offered, rate, stop=stop_sending)
            try:

                def mid_stream() -> bool:
                    self._running()
                    batches = read_batches(self.progress_file)
                    return (
                        sum(1 for b in batches if b.kafka_records and b.started_at >= since) >= plan.batches_before_kill
                    )

                # Polled often, so the kill strikes just after a batch reported, never between a
                # batch's commit and its progress line (a batch that did not report is re-run).
                wait_until(
                    mid_stream, plan.start_timeout_seconds, f"{self.name}'s batches before the kill", interval=0.1
                )
                job = self._running()
                killed_at = time.time()
                signal_job(job.pid, signal.SIGKILL)
                log.info("%s: killed the job (exit %s); restarting it", self.name, job.wait(timeout=120))
                self.start()
                shown.update(f"{self.name}: {RECOVERY}, killed and restarted, waiting for a batch")
                killed = datetime.fromtimestamp(killed_at, UTC)

                def recovered() -> bool:
                    self._running()
                    return recovery_seconds(read_batches(self.progress_file), self.queries, killed) is not None

                wait_until(
                    recovered, plan.start_timeout_seconds, f"{self.name}'s first batch after the kill", interval=0.25
                )
            finally:
                stop_sending.set()
            sent = sending.result()
            sent_until = time.time()
            done_at = self.wait_until_done(plan.drain_timeout_seconds, shown)
        cpu = cores_used(cpu_before, self.processes(), done_at - started)
        return Phase(RECOVERY, rate, started, sent_until, done_at, sent, cpu), killed_at

    def run_backlog(self, plan: BenchPlan) -> tuple[Phase, float]:
        """With the job stopped, pre-load the backlog on the topic, then restart the job on its
        checkpoint and wait until it drained it. Returns the phase and when the job started (epoch s)."""
        self.stop()
        started = time.time()
        with step(f"{self.name}: pre-loading {plan.backlog:,} transactions") as shown:
            backlog = itertools.islice(self.offered, plan.backlog)
            sent = preload(self.config.kafka, backlog, plan.preload_processes, shown, plan.drain_timeout_seconds)
        sent_until = time.time()
        cpu_before = cpu_snapshot(self.processes_without_job())
        job_started = time.time()
        self.start()
        with step(f"{self.name}: draining the backlog of {sent:,}") as shown:
            done_at = self.wait_until_done(plan.drain_timeout_seconds, shown)
        cpu = cores_used(cpu_before, self.processes(), done_at - job_started)
        log.info("%s: drained %d transactions %.1f s after the job started", self.name, sent, done_at - job_started)
        return Phase(BACKLOG, 0.0, started, sent_until, done_at, sent, cpu), job_started

    def processes_without_job(self) -> dict[str, list[int]]:
        return {
            "kafka": [pid for pid in (kafka_server(self.config).pid(),) if pid],
            "cassandra": [pid for pid in (cassandra_server(self.config).pid(),) if pid],
            "bench_producer": [os.getpid()],
        }


def run_system(
    base_config: Config, system: str, plan: BenchPlan, work_dir: Path
) -> tuple[dict[str, Any], list[LatencySample]]:
    """Benchmark one streaming system on a scratch keyspace and topic; return its figures and its latency samples."""
    with scratch_space(base_config, f"bench_{system}", work_dir, keep=plan.keep) as (config, session):
        keyspace = config.cassandra.keyspace
        now = datetime.now(UTC)
        for change in plan.workload.changes(now):
            record_profile_change(session, keyspace, change)
        load_change_history(session, keyspace, plan.workload.history(now))
        load_rules(session, keyspace, plan.workload.rule_definitions(), now - timedelta(hours=1))
        cases = CaseStore(session, keyspace).record(plan.workload.known_cases(now))
        log.info("seeded %d known cases for the similarity step", cases)
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
    figures = system_figures(SYSTEMS[system].job.stem, SYSTEMS[system].queries, measured, batches, samples, checked)
    return figures, samples


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


def load_rules(session: Session, keyspace: str, definitions: list[RuleDefinition], created_at: datetime) -> None:
    """Store the rules as the API does (each in its logged batch), several at a time."""
    if not definitions:
        return
    store = RuleStore(session, keyspace)
    started = time.monotonic()
    rule_log = logging.getLogger(RuleStore.__module__)
    level = rule_log.level
    rule_log.setLevel(logging.WARNING)  # one line per rule added: ten thousand here
    try:
        with ThreadPoolExecutor(16) as writers:
            list(writers.map(lambda definition: store.add(definition, created_at), definitions))
    finally:
        rule_log.setLevel(level)
    log.info("loaded %d rules in %.1f s", len(definitions), time.monotonic() - started)


def _drive(config: Config, system: str, plan: BenchPlan, work_dir: Path) -> Measured:
    """Start the job, warm it up, run the latency and small-batch phases, kill and restart it, stop
    it, pre-load the backlog and drain it with the job restarted."""
    run = SystemRun(system, config, work_dir / "job.log", OfferedTransactions(plan.workload))
    run.start()
    try:
        log.info("%s: warming up with %d transactions", system, plan.warmup_transactions)
        with step(f"{system}: starting the job, {plan.warmup_transactions:,} transactions to warm up") as shown:
            send_transactions(config.kafka, run.offered, rate=0, limit=plan.warmup_transactions)
            run.wait_until_done(plan.start_timeout_seconds, shown)
        drain_timeout = plan.drain_timeout_seconds
        # Spark's first batches of a plan are slow (code generation, JIT): not measured.
        phases = [run.run_phase(WARM_UP, max(plan.latency_rates), plan.warmup_seconds, drain_timeout)]
        for rate in plan.latency_rates:
            phases.append(run.run_phase(latency_phase(rate), rate, plan.latency_seconds, drain_timeout))
        phases.append(run.run_phase(SMALL_BATCHES, plan.small_batch_rate, plan.small_batch_seconds, drain_timeout))
        recovery, killed_at = run.run_recovery(plan)
        phases.append(recovery)
        peak_rss = run.peak_rss()
        backlog, backlog_started = run.run_backlog(plan)
        phases.append(backlog)
        peak_rss = {role: max(mb, peak_rss.get(role, 0.0)) for role, mb in run.peak_rss().items()}
    finally:
        run.stop()
    return Measured(phases, peak_rss, run.offered.keys, run.job_log, killed_at, backlog_started, plan.backlog)


def prepare_driver_class_archive(config: Config, work_dir: Path) -> Path | None:
    """What ``fraudshop job --prepare`` does, before any job starts: every system's restarts then
    measure a prepared driver JVM (none when the warm-up fails: the figures say so)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    prepare_log = work_dir / "prepare.log"
    with step("preparing the driver JVM's class archive (fraudshop job --prepare)"), open(prepare_log, "ab") as output:
        try:
            return prepare_class_archive(config, output)
        except ClassArchiveError as error:
            log.warning("measuring without a class archive: %s (log %s)", error, prepare_log)
            return None


def run_bench(config: Config, plan: BenchPlan, output: Path) -> dict[str, Any]:
    """Benchmark each system of the plan in turn; write bench.json and bench.png to ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    systems: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[LatencySample]] = {}
    class_archive = prepare_driver_class_archive(config, output / "bench-work")
    for index, system in enumerate(plan.systems, start=1):
        work_dir = output / "bench-work" / system
        with step(f"system {index} of {len(plan.systems)}: {system}"):
            if system == CEILING:
                systems[system] = run_ceiling(config, plan, work_dir)
            else:
                systems[system], samples[system] = run_system(config, system, plan, work_dir)
    ceiling = systems.get(CEILING, {}).get(CEILING_RATE)
    for system in STREAMING_SYSTEMS:
        if system in systems:
            systems[system] = with_ceiling(systems[system], ceiling)
    ours = {**headline(systems.get("fraudshop")), CEILING_RATE: ceiling}
    result = {
        "benchmark": "fraudshop bench",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        # The headline: fraudshop's figures, the baseline's beside them, and the targets.
        **ours,
        "baseline": headline(systems["baseline"]) if "baseline" in systems else None,
        "targets": targets(ours),
        "correctness_passed": all(figures["correctness"]["passed"] for figures in systems.values()),
        "machine": machine(),
        "commit": source_commit(),
        "definitions": DEFINITIONS,
        "plan": asdict(plan),
        "job_settings": {
            "spark_master": config.job.spark_master,
            "trigger_interval": config.job.trigger_interval,
            "shuffle_partitions": config.job.shuffle_partitions,
            "topic_partitions": config.kafka.topic_partitions,
            "max_offsets_per_trigger": config.kafka.max_offsets_per_trigger,
            "driver_class_archive": str(class_archive) if class_archive else None,
        },
        "systems": systems,
        "comparison": comparison(systems),
    }
    write_json(result, output / "bench.json")
    write_plot(systems, samples, output / "bench.png")
    log.info("results in %s and %s", output / "bench.json", output / "bench.png")
    return result
