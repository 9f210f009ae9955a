"""Everything the detection job does with one micro-batch: the ``foreachBatch`` body."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from fraudshop.batch_metrics import BatchMetrics
from fraudshop.detection import (
    ALERT_COLUMNS,
    SUPERSEDED_CUSTOMERS,
    flag_changed_customer_transactions,
    transactions_in_change_windows,
)
from fraudshop.detection_store import DetectionStore
from fraudshop.parsing import parse_transaction_records, rejected_records, valid_transactions
from fraudshop.profile_changes import ProfileChange

log = logging.getLogger(__name__)

#: Column the stream adds to every record: the micro-batch's timestamp, which Spark keeps in
#: the checkpoint, so a replayed batch writes the same detected_at as the first run.
BATCH_TIMESTAMP = "batch_timestamp"
#: Exit code of a job stopped by the stuck-batch watchdog (EX_SOFTWARE).
STUCK_BATCH_EXIT_CODE = 70
CHANGE_SCHEMA = "account_no string, last_updated timestamp, change_type string, customer_id string"


class MicroBatchProcessor:
    """Per micro-batch:

    1. parse the Kafka records; write valid transactions, and rejects with their reason;
    2. flag the batch's transactions against the changes of their accounts, read now;
    3. find changes recorded since the previous batch (late changes) and flag the stored
       transactions inside their windows, reading only those accounts' partitions.

    Step 3 makes the outcome independent of arrival order: a transaction is flagged whether its
    change was recorded before it arrived (step 2) or after (step 3 of a later batch).
    """

    def __init__(
        self,
        store: DetectionStore,
        window_seconds: int,
        max_record_bytes: int,
        max_future_skew_seconds: int,
        change_scan_margin: timedelta,
        batch_attempts: int = 1,
        batch_retry_backoff_seconds: float = 0.0,
        batch_timeout_seconds: float | None = None,
        on_batch_done: Callable[[BatchMetrics], None] | None = None,
    ) -> None:
        self.store = store
        self.window_seconds = window_seconds
        self.max_record_bytes = max_record_bytes
        self.max_future_skew_seconds = max_future_skew_seconds
        # Changes become visible a little after their recorded_at (clock skew, write latency):
        # each scan starts this much before the previous one ended.
        self.change_scan_margin = change_scan_margin
        self.batch_attempts = batch_attempts
        self.batch_retry_backoff_seconds = batch_retry_backoff_seconds
        self.batch_timeout_seconds = batch_timeout_seconds
        self.on_batch_done = on_batch_done
        self._scanned_until: datetime | None = None
        # Changes already handled inside the margin, so re-scanning it rewrites nothing.
        self._handled_changes: dict[tuple[str, datetime, str], datetime] = {}

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        watchdog = self._start_watchdog(batch_id)
        try:
            for attempt in range(1, self.batch_attempts + 1):
                metrics = BatchMetrics(batch_id)  # of this attempt only
                try:
                    self._process_batch(records, metrics)
                except Exception as error:  # any failure: the whole batch is idempotent, so retry it
                    if is_kafka_data_loss(error):
                        raise  # a retry reads the same missing offsets: stop the stream and say why
                    if attempt == self.batch_attempts:
                        log.error("batch %d failed %d time(s), giving up: %s", batch_id, attempt, _first_line(error))
                        raise
                    delay = self.batch_retry_backoff_seconds * 2 ** (attempt - 1)
                    log.warning(
                        "batch %d failed (attempt %d of %d), retrying in %.0f s: %s",
                        batch_id,
                        attempt,
                        self.batch_attempts,
                        delay,
                        _first_line(error),
                    )
                    time.sleep(delay)
                    continue
                if self.on_batch_done is not None:
                    self.on_batch_done(metrics)
                return
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _start_watchdog(self, batch_id: int) -> threading.Timer | None:
        """Stop the whole job if this batch outlives ``batch_timeout_seconds``: a call stuck inside
        the JVM cannot be interrupted, and an exited job restarts cleanly from its checkpoint."""
        if self.batch_timeout_seconds is None:
            return None
        timeout = self.batch_timeout_seconds

        def stop_the_job() -> None:
            log.error(
                "batch %d has not finished after %.0f s: a Cassandra or Kafka call is stuck. Stopping the job; "
                "restart it and it resumes this batch from its checkpoint.",
                batch_id,
                timeout,
            )
            logging.shutdown()
            os._exit(STUCK_BATCH_EXIT_CODE)

        watchdog = threading.Timer(timeout, stop_the_job)
        watchdog.daemon = True
        watchdog.start()
        return watchdog

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
                    metrics.alert_rows = self._write_alerts(alerts, batch_at)
        finally:
            parsed.unpersist()
        with metrics.step("late_changes"):
            metrics.late_alert_rows = self._flag_transactions_of_late_changes(records, batch_at)
        metrics.alert_rows += metrics.late_alert_rows
        if metrics.kafka_records or metrics.late_alert_rows:
            log.info(
                "batch %d: %d alert rows written (%d for late changes; late-change scan %.0f ms)",
                metrics.batch_id,
                metrics.alert_rows,
                metrics.late_alert_rows,
                metrics.step_ms["late_changes"],
            )

    def _flag_transactions_of_late_changes(self, records: DataFrame, batch_at: datetime) -> int:
        if self._scanned_until is None:
            # First batch of this run: resume the scan, or look one window back on a first start.
            self._scanned_until = self.store.load_scan_progress() or batch_at - timedelta(seconds=self.window_seconds)
        since = self._scanned_until - self.change_scan_margin
        fresh = [
            (recorded_at, change)
            for recorded_at, change in self.store.changes_recorded_since(since)
            if change.key not in self._handled_changes
        ]
        written = 0
        if fresh:
            spark = records.sparkSession
            new_changes = spark.createDataFrame([_change_row(change) for _, change in fresh], CHANGE_SCHEMA)
            accounts = new_changes.select("account_no").distinct()
            candidates = transactions_in_change_windows(
                self.store.transactions_of_accounts(accounts), new_changes, self.window_seconds
            )
            alerts = flag_changed_customer_transactions(
                candidates, self.store.changes_of_accounts(accounts), self.window_seconds
            )
            written = self._write_alerts(alerts, batch_at)
            log.info("%d change(s) recorded since %s: %d alert rows written", len(fresh), since.isoformat(), written)
            self._handled_changes.update({change.key: recorded_at for recorded_at, change in fresh})
        self._handled_changes = {key: at for key, at in self._handled_changes.items() if at >= since}
        self._scanned_until = max(self._scanned_until, batch_at)
        self.store.save_scan_progress(self._scanned_until)
        return written

    def _write_alerts(self, alerts: DataFrame, batch_at: datetime) -> int:
        """Upsert the alerts and delete the rows they supersede; return how many were written."""
        alerts = alerts.withColumn("detected_at", F.lit(batch_at)).persist()  # written to two tables
        try:
            written = Observation()
            observed = alerts.observe(
                written,
                F.count(F.lit(1)).alias("alerts"),
                F.count(F.when(F.size(SUPERSEDED_CUSTOMERS) > 0, True)).alias("superseding"),
            )
            self.store.write_alerts(observed.select(*ALERT_COLUMNS, "detected_at"))
            counts = written.get
            if counts["superseding"]:  # rare: a customer's alert now belongs to another's change
                stale = (
                    alerts.where(F.size(SUPERSEDED_CUSTOMERS) > 0)
                    .select(F.explode(SUPERSEDED_CUSTOMERS).alias("customer_id"), "tranpostdt", "tranid")
                    .collect()
                )
                self.store.delete_alerts([(row.customer_id, row.tranpostdt, row.tranid) for row in stale])
            return int(counts["alerts"])
        finally:
            alerts.unpersist()


def is_kafka_data_loss(error: BaseException) -> bool:
    """Spark's Kafka source reports lost records with advice naming its ``failOnDataLoss`` option."""
    return "failOnDataLoss" in str(error)


def _first_line(error: BaseException) -> str:
    """The gist of an error; for a Java one (Py4J) its exception, not the Python call site."""
    java_exception = getattr(error, "java_exception", None)
    text = (str(java_exception) if java_exception is not None else str(error)).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _batch_timestamp(records: DataFrame) -> datetime | None:
    """The timestamp every row of the micro-batch carries, ticks included; None if it has no row."""
    row = records.agg(F.unix_micros(F.max(BATCH_TIMESTAMP)).alias("batch_micros")).first()
    return None if row is None or row["batch_micros"] is None else _from_micros(row["batch_micros"])


def _from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def _change_row(change: ProfileChange) -> tuple[str, datetime, str, str]:
    # Spark reads aware datetimes as instants; naive ones would be taken as local time.
    return (change.account_no, change.last_updated, change.change_type, change.customer_id)
