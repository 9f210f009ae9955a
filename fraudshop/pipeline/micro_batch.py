"""The ``foreachBatch`` body: one attempt at a micro-batch (:mod:`~fraudshop.pipeline.resilience` retries it)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from fraudshop.pipeline.alerts import write_alerts
from fraudshop.pipeline.held import computed_once
from fraudshop.pipeline.late_changes import LateChangeScanner, ScanOutcome
from fraudshop.pipeline.metrics import BatchMetrics
from fraudshop.pipeline.ports import DetectionStore
from fraudshop.pipeline.recent_changes import RecentChanges
from fraudshop.pipeline.resilience import watchdog
from fraudshop.pipeline.rules import RuleStep
from fraudshop.pipeline.side_by_side import run_side_by_side
from fraudshop.pipeline.similarity import SimilarityStep
from fraudshop.transforms.detection import flag_changed_customer_transactions
from fraudshop.transforms.parsing import parse_transaction_records, rejected_records, valid_transactions
from fraudshop.transforms.rules import distinct_transactions

log = logging.getLogger(__name__)

#: Column the stream adds to every record: the micro-batch's timestamp, which Spark keeps in
#: the checkpoint, so a replayed batch writes the same detected_at as the first run.
BATCH_TIMESTAMP = "batch_timestamp"


@dataclass(eq=False)
class MicroBatchProcessor:
    """Per micro-batch: 1. parse the Kafka records, write the transactions and the rejects; 2. flag the
    transactions against their accounts' changes, read now: the recent ones against the changes held for
    the batch (:class:`RecentChanges`), any older ones against their accounts' partitions, and judge them
    against the fraud-prevention rules in force (:class:`~fraudshop.pipeline.rules.RuleStep`); 3. flag the
    stored transactions in the windows of changes recorded since the previous batch
    (:class:`LateChangeScanner`), so that the outcome does not depend on arrival order. Every write is
    idempotent, so a failed batch can be run again as a whole.

    Spark's Kafka source starts no micro-batch while no record arrives; :meth:`scan_if_idle`, called by a
    timer (:class:`IdleScanTimer`), runs the late-change scan then. A lock keeps it between batches: a scan
    must see every transaction a finished batch wrote, and the scanner's state is not shared."""

    store: DetectionStore
    late_changes: LateChangeScanner
    recent_changes: RecentChanges
    window_seconds: int
    max_record_bytes: int
    max_future_skew_seconds: int
    #: The fraud-prevention rules' step; None runs the profile-change rule alone.
    rules: RuleStep | None = None
    #: The similarity signal's step; None scores nothing.
    similarity: SimilarityStep | None = None
    on_batch_done: Callable[[BatchMetrics], None] | None = None
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _last_scan: float | None = field(default=None, init=False)  # clock() of the last scan, None before any
    _steps: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(5, thread_name_prefix="batch-step"), init=False
    )

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        metrics = BatchMetrics(batch_id)  # of this attempt only
        with self._lock:
            self._process_batch(records, metrics)
        if self.on_batch_done is not None:
            self.on_batch_done(metrics)

    def _write_transactions(self, observed: DataFrame, metrics: BatchMetrics) -> None:
        with metrics.step("transactions"):
            self.store.write_transactions(valid_transactions(observed))

    def _flag_recent_transactions(self, recent: DataFrame, recent_from: datetime, metrics: BatchMetrics) -> None:
        with metrics.step("alerts"):
            changes = self.recent_changes.covering(recent.sparkSession, recent_from)
            if changes is not None:  # else no recent transaction can be flagged
                metrics.alert_rows += self._flag_transactions(recent, changes)

    def _write_merchant_days(self, transactions: DataFrame, metrics: BatchMetrics) -> None:
        if self.rules is None:
            return
        with metrics.step("merchant_days"):
            self.rules.write_merchant_days(transactions)

    def _apply_rules(self, distinct: DataFrame, metrics: BatchMetrics) -> None:
        if self.rules is None:
            return
        with metrics.step("rules"):
            outcome = self.rules.apply(distinct, BATCH_TIMESTAMP)
        metrics.rules, metrics.rule_hits = outcome.rules, outcome.hits

    def _score_similarity(self, distinct: DataFrame, metrics: BatchMetrics) -> None:
        if self.similarity is None:
            return
        with metrics.step("similarity"):
            outcome = self.similarity.apply(distinct, BATCH_TIMESTAMP)
        metrics.cases, metrics.similarity_hits = outcome.cases, outcome.hits

    def _flag_transactions(self, transactions: DataFrame, changes: DataFrame) -> int:
        """``detected_at`` is the batch time every row carries, known without waiting for counts."""
        alerts = flag_changed_customer_transactions(
            transactions, changes, self.window_seconds, carried=(BATCH_TIMESTAMP,)
        )
        return write_alerts(self.store, alerts, F.col(BATCH_TIMESTAMP))

    def scan_if_idle(self, spark: SparkSession, idle_seconds: float) -> ScanOutcome | None:
        """Run the late-change scan if no batch or scan ran it in the last ``idle_seconds`` (a batch
        scans itself); return its outcome, or None if it was not due."""
        with self._lock:
            if self._last_scan is not None and self.clock() - self._last_scan < idle_seconds:
                return None
            scan = self._scan(spark, self.wall_clock())
        if scan.alert_rows:
            log.info("late-change scan between batches: %d alert rows written", scan.alert_rows)
        return scan

    def _scan(self, spark: SparkSession, batch_at: datetime) -> ScanOutcome:
        scan = self.late_changes.scan(spark, batch_at)
        self._last_scan = self.clock()
        if not scan.caught_up:
            log.info("%d late changes handled, more on the next scans", scan.changes)
        return scan

    def _process_batch(self, records: DataFrame, metrics: BatchMetrics) -> None:
        # Counts ride along with the writes (observed metrics) instead of jobs of their own: each
        # Spark job costs a fixed few hundred milliseconds, which is most of a small batch's time.
        all_parsed = parse_transaction_records(
            records, self.max_record_bytes, self.max_future_skew_seconds, carried=(BATCH_TIMESTAMP,)
        )
        # Recent transactions are matched against the changes held for the batch, older ones (rare)
        # against their accounts' partitions once the observed counts say there are some.
        recent_from = self.recent_changes.recent_from(self.wall_clock())
        is_recent = F.col("tranpostdt") >= F.lit(recent_from)
        older = F.col("reject_reason").isNull() & ~is_recent
        # Read by the transaction write, the rejects write and the detection.
        with computed_once(all_parsed) as parsed, ExitStack() as held:
            transactions = valid_transactions(parsed, carried=(BATCH_TIMESTAMP,))
            # Each transaction key once, for the rules and the similarity: computed by whichever reads it
            # first, then read by both (lazy: a batch with neither step computes nothing).
            distinct = held.enter_context(computed_once(distinct_transactions(transactions)))
            # Observed above the checkpoint, never inside it: metrics inside it are not reported when
            # its blocks are read instead of computed, and get() would wait for ever.
            arrivals = Observation()
            observed = parsed.observe(
                arrivals,
                F.count(F.lit(1)).alias("kafka_records"),
                F.count("reject_reason").alias("rejected"),
                F.count(F.when(older, True)).alias("older"),
                F.unix_micros(F.max(BATCH_TIMESTAMP)).alias("batch_micros"),
            )
            # The transactions' writes (by account, and by merchant-day for the rules), the profile-change rule,
            # the fraud-prevention rules and the similarity score are independent (the rules and the score tell
            # the batch's own transactions from stored ones by key, whichever is written first; the score's
            # columns of a transaction row are its own): run side by side, each one's fixed costs (planning,
            # scheduling, round trips) overlap.
            run_side_by_side(
                self._steps,
                partial(self._write_transactions, observed, metrics),
                partial(self._write_merchant_days, transactions, metrics),
                partial(self._flag_recent_transactions, transactions.where(is_recent), recent_from, metrics),
                partial(self._apply_rules, distinct, metrics),
                partial(self._score_similarity, distinct, metrics),
            )
            counts = arrivals.get
            metrics.kafka_records, metrics.rejected = counts["kafka_records"], counts["rejected"]
            metrics.transactions = metrics.kafka_records - metrics.rejected
            if not metrics.kafka_records:  # Spark starts no batch without records; nothing happened
                return
            batch_at = _from_micros(counts["batch_micros"])
            if counts["older"]:  # rare: replays, late files
                with metrics.step("older_transactions"):
                    older_transactions = transactions.where(~is_recent)
                    changes = self.store.changes_of_accounts(older_transactions.select("account_no"))
                    metrics.alert_rows += self._flag_transactions(older_transactions, changes)
            if metrics.rejected:
                with metrics.step("rejects"):
                    self.store.write_rejects(rejected_records(parsed).withColumn("rejected_at", F.lit(batch_at)))
        with metrics.step("late_changes"):
            scan = self._scan(records.sparkSession, batch_at)
        metrics.late_changes, metrics.late_alert_rows = scan.changes, scan.alert_rows
        metrics.alert_rows += metrics.late_alert_rows
        log.info(
            "batch %d: %d alert rows written (%d for late changes; late-change scan %.0f ms)",
            metrics.batch_id,
            metrics.alert_rows,
            metrics.late_alert_rows,
            metrics.step_ms["late_changes"],
        )


def _from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


@dataclass(eq=False)
class IdleScanTimer:
    """A daemon thread calling :meth:`MicroBatchProcessor.scan_if_idle` every ``interval_seconds``, so that
    changes recorded late are flagged while no transaction arrives. A failed scan is logged and tried
    again; one that hangs longer than ``timeout_seconds`` calls ``on_stuck`` (by default the job exits, as
    for a stuck batch)."""

    processor: MicroBatchProcessor
    spark: SparkSession
    interval_seconds: float
    timeout_seconds: float
    on_stuck: Callable[[str, float], None]
    _stop: threading.Event = field(default_factory=threading.Event, init=False)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="late-change-scan", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.run_once()

    def run_once(self) -> None:
        with watchdog(self.timeout_seconds, self.on_stuck, "the late-change scan"):
            try:
                self.processor.scan_if_idle(self.spark, self.interval_seconds)
            except Exception as error:  # Cassandra restarting: the next tick tries again
                log.warning(
                    "late-change scan between batches failed, retrying in %.0f s: %s", self.interval_seconds, error
                )
