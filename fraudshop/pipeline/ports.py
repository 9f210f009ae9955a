"""What the detection job reads and writes, as one interface: Cassandra in production
(:mod:`fraudshop.io.cassandra.store`), plain DataFrames in the property-based tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

from pyspark.sql import DataFrame

from fraudshop.model.cases import KnownCases
from fraudshop.model.changes import RecordedChange
from fraudshop.model.risk import RiskModel
from fraudshop.model.tables import AlertKey


class DetectionStore(Protocol):
    """Writes are upserts into the bank tables; reads of ``accounts.account_no``'s rows happen now."""

    def write_transactions(self, transactions: DataFrame) -> None: ...
    def write_rejects(self, rejects: DataFrame) -> None: ...
    def changes_of_accounts(self, accounts: DataFrame) -> DataFrame: ...  # cust_change rows
    # Every cust_change row with last_updated >= since, as tuples in CHANGE_COLUMNS order (aware datetimes).
    def changes_since(self, since: datetime) -> list[tuple[Any, ...]]: ...
    def transactions_of_accounts(self, accounts: DataFrame) -> DataFrame: ...
    def write_alerts(self, alerts: DataFrame) -> None: ...  # cust_fraud and cust_fraud_by_day
    def delete_alerts(self, keys: Sequence[AlertKey]) -> None: ...  # cust_fraud rows, and nothing else
    # The first `limit` cust_change_log entries at or after `since`, by recorded_at (ties in any fixed order).
    def changes_recorded_since(self, since: datetime, limit: int) -> list[RecordedChange]: ...
    def load_scan_progress(self, job: str) -> datetime | None: ...  # None if the job's scan never ran
    def save_scan_progress(self, job: str, scanned_until: datetime) -> None: ...
    # The fraud-prevention rules' reads and writes (pipeline.rules): each read is of the partitions named.
    def holders_of_accounts(self, accounts: DataFrame) -> DataFrame: ...  # account_holder rows
    def rules_of_scopes(self, scopes: DataFrame) -> DataFrame: ...  # rule rows of (scope, scope_id) pairs
    # The accounts' stored transactions posted at or after `since` (HISTORY_COLUMNS of transforms.rules).
    def history_of_accounts(self, accounts: DataFrame, since: datetime) -> DataFrame: ...
    # The transaction_by_merchant_day rows of (merchant_id, day) pairs, each partition once however often named.
    def transactions_of_merchant_days(self, keys: DataFrame) -> DataFrame: ...
    def not_done(self, hits: DataFrame) -> DataFrame: ...  # the rows of `hits` whose hit_id rule_hit_done lacks
    def write_merchant_days(self, rows: DataFrame) -> None: ...  # transaction_by_merchant_day
    # rule_hit (those with a customer) and rule_hit_by_merchant_day (those at a merchant), then rule_hit_done.
    def write_rule_hits(self, hits: DataFrame) -> None: ...
    # The similarity signal's reads and writes (pipeline.similarity).
    def fraud_cases(self) -> KnownCases: ...  # every fraud_case row, read now
    def risk_model(self) -> RiskModel | None: ...  # the newest risk_model row of the job's feature set, read now
    def write_scores(self, scores: DataFrame) -> None: ...  # TRANSACTION_KEY and SCORE_COLUMNS into transaction
    # The merchant_day_total rows of the merchants in `merchants` with a day from `first` to `last` (inclusive).
    def merchant_day_totals(self, merchants: DataFrame, first: date, last: date) -> DataFrame: ...
    def write_merchant_day_totals(self, totals: DataFrame) -> None: ...  # merchant_day_total


class NotificationSink(Protocol):
    """Where the rules' hits are announced: the notifications topic in production."""

    def publish(self, hits: DataFrame) -> None: ...  # RULE_HIT_COLUMNS rows, one message each
