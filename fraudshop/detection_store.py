"""What the detection job reads and writes, as one interface: Cassandra in production
(:mod:`fraudshop.cassandra_store`), plain DataFrames in the property-based tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pyspark.sql import DataFrame

from fraudshop.profile_changes import ProfileChange

#: A cust_fraud primary key: (customer_id, tranpostdt, tranid).
AlertKey = tuple[str, datetime, str]


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

    def changes_recorded_since(self, since: datetime) -> list[tuple[datetime, ProfileChange]]:
        """(recorded_at, change) of every change recorded at or after ``since``."""

    def load_scan_progress(self) -> datetime | None:
        """Where this job's scan of recorded changes got to, if it ever ran."""

    def save_scan_progress(self, scanned_until: datetime) -> None: ...
