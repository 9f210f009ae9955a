"""A :class:`DetectionStore` over plain Python dicts, with Cassandra's upsert-by-primary-key
semantics, so the job's micro-batch logic can be run many times in a property-based test."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from fraudshop.detection_store import AlertKey
from fraudshop.micro_batch import CHANGE_SCHEMA
from fraudshop.profile_changes import ProfileChange

TRANSACTION_SCHEMA = (
    "account_no string, tranpostdt timestamp, tranid string, amount double, merchant string, cardnum string, "
    "trancd string, trandescription string, transtat string, trantype string, bucket string, transrsncd string, "
    "transrsndesc string, transrsntype string, tranamt double, source_topic string, source_partition int, "
    "source_offset long, source_timestamp timestamp"
)


class InMemoryStore:
    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.transactions: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.rejects: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.changes: dict[tuple[str, datetime, str], ProfileChange] = {}
        self.change_log: list[tuple[datetime, ProfileChange]] = []
        self.alerts: dict[AlertKey, dict[str, Any]] = {}
        self.alerts_by_day: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.scan_progress: datetime | None = None

    def record_change(self, change: ProfileChange, recorded_at: datetime) -> None:
        """What record_profile_change does: cust_change and cust_change_log."""
        self.changes[change.key] = change
        self.change_log.append((recorded_at, change))

    def write_transactions(self, transactions: DataFrame) -> None:
        for row in transactions.collect():
            self.transactions[(row.account_no, row.tranpostdt, row.tranid)] = row.asDict()

    def write_rejects(self, rejects: DataFrame) -> None:
        for row in rejects.collect():
            self.rejects[(row.reason, row.source_topic, row.source_partition, row.source_offset)] = row.asDict()

    def _accounts(self, accounts: DataFrame) -> set[str]:
        return {row.account_no for row in accounts.collect()}

    def changes_of_accounts(self, accounts: DataFrame) -> DataFrame:
        wanted = self._accounts(accounts)
        rows = [
            (c.account_no, c.last_updated, c.change_type, c.customer_id)
            for c in self.changes.values()
            if c.account_no in wanted
        ]
        return self.spark.createDataFrame(rows, CHANGE_SCHEMA)

    def transactions_of_accounts(self, accounts: DataFrame) -> DataFrame:
        wanted = self._accounts(accounts)
        rows = [row for row in self.transactions.values() if row["account_no"] in wanted]
        return self.spark.createDataFrame(rows, TRANSACTION_SCHEMA)

    def write_alerts(self, alerts: DataFrame) -> None:
        for row in alerts.collect():
            self.alerts[(row.customer_id, row.tranpostdt, row.tranid)] = row.asDict()
            self.alerts_by_day[(row.tranpostdt.date(), row.tranpostdt, row.tranid)] = row.asDict()

    def delete_alerts(self, keys: Sequence[AlertKey]) -> None:
        for key in keys:
            self.alerts.pop(key, None)

    def changes_recorded_since(self, since: datetime) -> list[tuple[datetime, ProfileChange]]:
        return [(at, change) for at, change in self.change_log if at >= since]

    def load_scan_progress(self) -> datetime | None:
        return self.scan_progress

    def save_scan_progress(self, scanned_until: datetime) -> None:
        self.scan_progress = scanned_until
