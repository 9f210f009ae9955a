"""What the detection job reads and writes, as one interface: Cassandra in production
(:mod:`fraudshop.io.cassandra.store`), plain DataFrames in the property-based tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pyspark.sql import DataFrame

from fraudshop.model.changes import RecordedChange
from fraudshop.model.tables import AlertKey


class DetectionStore(Protocol):
    def write_transactions(self, transactions: DataFrame) -> None:
        """Upsert bank.transaction rows."""

    def write_rejects(self, rejects: DataFrame) -> None:
        """Upsert bank.transaction_rejects rows."""

    def changes_of_accounts(self, accounts: DataFrame) -> DataFrame:
        """cust_change rows of the accounts in ``accounts.account_no``, read now."""

    def transactions_of_accounts(self, accounts: DataFrame) -> DataFrame:
        """Stored transactions of the accounts in ``accounts.account_no``, read now."""

    def write_alerts(self, alerts: DataFrame) -> None:
        """Upsert cust_fraud and cust_fraud_by_day rows."""

    def delete_alerts(self, keys: Sequence[AlertKey]) -> None:
        """Delete cust_fraud rows (and nothing else)."""

    def changes_recorded_since(self, since: datetime, limit: int) -> list[RecordedChange]:
        """The first ``limit`` cust_change_log entries recorded at or after ``since``, in
        ``recorded_at`` order (entries recorded at the same instant in any fixed order)."""

    def load_scan_progress(self, job: str) -> datetime | None:
        """Where the scan of recorded changes of the job ``job`` got to, if it ever ran."""

    def save_scan_progress(self, job: str, scanned_until: datetime) -> None: ...
