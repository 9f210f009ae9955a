"""A :class:`DetectionStore` over plain Python dicts, with Cassandra's upsert-by-primary-key
semantics, so the job's micro-batch logic can be run many times in a property-based test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from fraudshop.model.changes import ProfileChange, RecordedChange
from fraudshop.model.tables import CHANGE_COLUMNS, REJECT_KEY, TRANSACTION_KEY, AlertKey, ChangeKey
from fraudshop.pipeline.late_changes import LateChangeScanner
from fraudshop.pipeline.metrics import BatchMetrics
from fraudshop.pipeline.micro_batch import MicroBatchProcessor
from fraudshop.pipeline.recent_changes import CHANGE_SCHEMA, RecentChanges
from fraudshop.transforms.parsing import parse_transaction_records, valid_transactions
from tests.unit.kafka_rows import kafka_records


class InMemoryStore:
    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.transactions: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.rejects: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.changes: dict[ChangeKey, ProfileChange] = {}
        self.change_log: list[RecordedChange] = []
        self.alerts: dict[AlertKey, dict[str, Any]] = {}
        self.alerts_by_day: dict[tuple[Any, ...], dict[str, Any]] = {}
        # The table's columns as the job writes them, known before any write (an idle scan can come first).
        self.transaction_schema: StructType = valid_transactions(
            parse_transaction_records(kafka_records(spark, []))
        ).schema
        self.scan_progress: dict[str, datetime] = {}
        self.changes_read = 0  # log entries returned by changes_recorded_since, in all

    def record_change(self, change: ProfileChange, recorded_at: datetime) -> None:
        """What record_profile_change does: cust_change and cust_change_log, which names the
        customer the change belonged to when it is recorded again for another."""
        current = self.changes.get(change.key)
        previous = current.customer_id if current and current.customer_id != change.customer_id else None
        self.changes[change.key] = change
        self.change_log.append(RecordedChange(recorded_at, change, previous))

    def write_transactions(self, transactions: DataFrame) -> None:
        for row in transactions.collect():
            self.transactions[tuple(row[name] for name in TRANSACTION_KEY)] = row.asDict()

    def write_rejects(self, rejects: DataFrame) -> None:
        for row in rejects.collect():
            self.rejects[tuple(row[name] for name in REJECT_KEY)] = row.asDict()

    def _accounts(self, accounts: DataFrame) -> set[str]:
        return {row.account_no for row in accounts.collect()}

    def changes_of_accounts(self, accounts: DataFrame) -> DataFrame:
        wanted = self._accounts(accounts)
        rows = [
            tuple(getattr(change, name) for name in CHANGE_COLUMNS)
            for change in self.changes.values()
            if change.account_no in wanted
        ]
        return self.spark.createDataFrame(rows, CHANGE_SCHEMA)

    def changes_since(self, since: datetime) -> list[tuple[Any, ...]]:
        return [
            tuple(getattr(change, name) for name in CHANGE_COLUMNS)
            for change in self.changes.values()
            if change.last_updated >= since
        ]

    def transactions_of_accounts(self, accounts: DataFrame) -> DataFrame:
        wanted = self._accounts(accounts)
        rows = [row for row in self.transactions.values() if row["account_no"] in wanted]
        return self.spark.createDataFrame(rows, self.transaction_schema)

    def write_alerts(self, alerts: DataFrame) -> None:
        for row in alerts.collect():
            self.alerts[(row.customer_id, row.tranpostdt, row.tranid)] = row.asDict()
            self.alerts_by_day[(row.tranpostdt.date(), row.tranpostdt, row.tranid)] = row.asDict()

    def delete_alerts(self, keys: Sequence[AlertKey]) -> None:
        for key in keys:
            self.alerts.pop(key, None)

    def changes_recorded_since(self, since: datetime, limit: int) -> list[RecordedChange]:
        # In the log's clustering order: recorded_at, then the change's key.
        ordered = sorted(self.change_log, key=lambda entry: entry.key)
        found = [entry for entry in ordered if entry.recorded_at >= since][:limit]
        self.changes_read += len(found)
        return found

    def load_scan_progress(self, job: str) -> datetime | None:
        return self.scan_progress.get(job)

    def save_scan_progress(self, job: str, scanned_until: datetime) -> None:
        self.scan_progress[job] = scanned_until


def detection_processor(
    store: InMemoryStore,
    window: timedelta = timedelta(hours=24),
    margin: timedelta = timedelta(seconds=30),
    changes_per_batch: int = 10_000,
    on_batch_done: Callable[[BatchMetrics], None] | None = None,
    job: str = "test-query-id",
    recent: timedelta = timedelta(hours=1),
) -> MicroBatchProcessor:
    """The job's foreachBatch body over ``store`` (one attempt: no retry, no watchdog). Transactions posted
    within ``recent`` before the batch are matched against the held changes, older ones against partitions."""
    window_seconds = int(window.total_seconds())
    scanner = LateChangeScanner(store, window_seconds, margin, changes_per_batch, job_id=lambda: job)
    recent_changes = RecentChanges(store, window_seconds, int(recent.total_seconds()))
    return MicroBatchProcessor(store, scanner, recent_changes, window_seconds, 65536, 300, on_batch_done=on_batch_done)
