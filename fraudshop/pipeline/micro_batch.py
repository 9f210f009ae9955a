"""The ``foreachBatch`` body: one attempt at a micro-batch (:mod:`~fraudshop.pipeline.resilience` retries it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from fraudshop.pipeline.alerts import write_alerts
from fraudshop.pipeline.late_changes import LateChangeScanner
from fraudshop.pipeline.metrics import BatchMetrics
from fraudshop.pipeline.ports import DetectionStore
from fraudshop.transforms.detection import flag_changed_customer_transactions
from fraudshop.transforms.parsing import parse_transaction_records, rejected_records, valid_transactions

log = logging.getLogger(__name__)

#: Column the stream adds to every record: the micro-batch's timestamp, which Spark keeps in
#: the checkpoint, so a replayed batch writes the same detected_at as the first run.
BATCH_TIMESTAMP = "batch_timestamp"


@dataclass(eq=False)
class MicroBatchProcessor:
    """Per micro-batch: 1. parse the Kafka records, write the transactions and the rejects; 2. flag the
    transactions against their accounts' changes, read now; 3. flag the stored transactions in the windows
    of changes recorded since the previous batch (:class:`LateChangeScanner`), so that the outcome does not
    depend on arrival order. Every write is idempotent, so a failed batch can be run again as a whole."""

    store: DetectionStore
    late_changes: LateChangeScanner
    window_seconds: int
    max_record_bytes: int
    max_future_skew_seconds: int
    on_batch_done: Callable[[BatchMetrics], None] | None = None

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        metrics = BatchMetrics(batch_id)  # of this attempt only
        self._process_batch(records, metrics)
        if self.on_batch_done is not None:
            self.on_batch_done(metrics)

    def _process_batch(self, records: DataFrame, metrics: BatchMetrics) -> None:
        # Counts ride along with the writes (observed metrics) instead of jobs of their own: each
        # Spark job costs a fixed few hundred milliseconds, which is most of a small batch's time.
        parsed = parse_transaction_records(
            records.where(F.col("topic").isNotNull()),  # ticks have no topic
            self.max_record_bytes,
            self.max_future_skew_seconds,
            carried=(BATCH_TIMESTAMP,),
        ).persist()  # read by the transaction write, the rejects write and the detection
        try:
            # Observed above the cache, never inside it: metrics inside a cached plan are not
            # reported when the cache is read instead of computed, and get() would wait for ever.
            arrivals = Observation()
            observed = parsed.observe(
                arrivals,
                F.count(F.lit(1)).alias("kafka_records"),
                F.count("reject_reason").alias("rejected"),
                F.unix_micros(F.max(BATCH_TIMESTAMP)).alias("batch_micros"),
            )
            with metrics.step("transactions"):
                self.store.write_transactions(valid_transactions(observed))
            counts = arrivals.get
            metrics.kafka_records, metrics.rejected = counts["kafka_records"], counts["rejected"]
            metrics.transactions = metrics.kafka_records - metrics.rejected
            batch_at = _from_micros(counts["batch_micros"]) if metrics.kafka_records else _batch_timestamp(records)
            if batch_at is None:  # no record and no tick: nothing happened
                return
            if metrics.rejected:
                with metrics.step("rejects"):
                    self.store.write_rejects(rejected_records(parsed).withColumn("rejected_at", F.lit(batch_at)))
            if metrics.transactions:
                transactions = valid_transactions(parsed)
                changes = self.store.changes_of_accounts(transactions.select("account_no"))
                alerts = flag_changed_customer_transactions(transactions, changes, self.window_seconds)
                with metrics.step("alerts"):
                    metrics.alert_rows = write_alerts(self.store, alerts, batch_at)
        finally:
            parsed.unpersist()
        with metrics.step("late_changes"):
            scan = self.late_changes.scan(records.sparkSession, batch_at)
        metrics.late_changes, metrics.late_alert_rows = scan.changes, scan.alert_rows
        metrics.alert_rows += metrics.late_alert_rows
        if metrics.kafka_records or metrics.late_alert_rows:
            log.info(
                "batch %d: %d alert rows written (%d for late changes; late-change scan %.0f ms)",
                metrics.batch_id,
                metrics.alert_rows,
                metrics.late_alert_rows,
                metrics.step_ms["late_changes"],
            )
        if not scan.caught_up:
            log.info("batch %d: %d late changes handled, more on the next batches", metrics.batch_id, scan.changes)


def _batch_timestamp(records: DataFrame) -> datetime | None:
    """The timestamp every row carries, ticks included; None if there is no row."""
    row = records.agg(F.unix_micros(F.max(BATCH_TIMESTAMP)).alias("batch_micros")).first()
    return None if row is None or row["batch_micros"] is None else _from_micros(row["batch_micros"])


def _from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)
