"""A :class:`DetectionStore` over plain Python dicts, with Cassandra's upsert-by-primary-key
semantics, so the job's micro-batch logic can be run many times in a property-based test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.types import DateType, DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

from fraudshop.model.cases import FraudCase, KnownCases
from fraudshop.model.changes import ProfileChange, RecordedChange
from fraudshop.model.risk import RiskModel
from fraudshop.model.rules import Rule
from fraudshop.model.tables import (
    ACCOUNT_HOLDER_COLUMNS,
    CHANGE_COLUMNS,
    MERCHANT_DAY_KEY,
    MERCHANT_DAY_TOTAL_COLUMNS,
    REJECT_KEY,
    RULE_COLUMNS,
    RULE_HIT_BY_MERCHANT_DAY_KEY,
    RULE_HIT_KEY,
    TRANSACTION_BY_MERCHANT_DAY_COLUMNS,
    TRANSACTION_BY_MERCHANT_DAY_KEY,
    TRANSACTION_KEY,
    AlertKey,
    ChangeKey,
)
from fraudshop.pipeline.late_changes import LateChangeScanner
from fraudshop.pipeline.metrics import BatchMetrics
from fraudshop.pipeline.micro_batch import MicroBatchProcessor
from fraudshop.pipeline.recent_changes import CHANGE_SCHEMA, RecentChanges
from fraudshop.pipeline.rules import RuleStep
from fraudshop.pipeline.similarity import SimilarityStep
from fraudshop.transforms.parsing import parse_transaction_records, valid_transactions
from fraudshop.transforms.rules import HISTORY_COLUMNS
from tests.unit.kafka_rows import kafka_records

# The rule tables' columns as the connector reads them (uuid as text).
_RULE_TYPES = {
    "amount_limit": DoubleType(),
    "amount_above": DoubleType(),
    "lookback_days": IntegerType(),
    "count_limit": IntegerType(),
    "created_at": TimestampType(),
}
RULE_SCHEMA = StructType([StructField(name, _RULE_TYPES.get(name, StringType())) for name in RULE_COLUMNS])
HOLDER_SCHEMA = StructType([StructField(name, StringType()) for name in ACCOUNT_HOLDER_COLUMNS])
_MERCHANT_DAY_TYPES = {"day": DateType(), "tranpostdt": TimestampType(), "amount": DoubleType()}
MERCHANT_DAY_SCHEMA = StructType(
    [StructField(name, _MERCHANT_DAY_TYPES.get(name, StringType())) for name in TRANSACTION_BY_MERCHANT_DAY_COLUMNS]
)
_TOTAL_TYPES = {"day": DateType(), "transactions": IntegerType(), "counted_at": TimestampType()}
MERCHANT_DAY_TOTAL_SCHEMA = StructType(
    [StructField(name, _TOTAL_TYPES.get(name, StringType())) for name in MERCHANT_DAY_TOTAL_COLUMNS]
)
DONE_SCHEMA = StructType([StructField("hit_id", StringType()), StructField("done_at", TimestampType())])


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
        self.rules: dict[str, Rule] = {}
        self.holders: dict[str, str] = {}
        self.merchant_days: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.hits: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.hits_by_merchant_day: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.done: dict[str, datetime] = {}
        self.rule_reads: list[set[tuple[str, str]]] = []  # the (scope, scope_id) keys each batch read
        self.cases: list[FraudCase] = []
        self.model: RiskModel | None = None  # the newest risk model, as the job would read it
        self.scores: dict[tuple[Any, ...], dict[str, Any]] = {}  # by transaction key: SCORE_COLUMNS
        self.totals: dict[tuple[str, date], dict[str, Any]] = {}  # merchant_day_total

    def add_rule(self, rule: Rule) -> None:
        self.rules[str(rule.rule_id)] = rule

    def record_change(self, change: ProfileChange, recorded_at: datetime) -> None:
        """What record_profile_change does: cust_change and cust_change_log, which names the
        customer the change belonged to when it is recorded again for another."""
        current = self.changes.get(change.key)
        previous = current.customer_id if current and current.customer_id != change.customer_id else None
        self.changes[change.key] = change
        self.change_log.append(RecordedChange(recorded_at, change, previous))

    def _stored_transactions(self) -> list[dict[str, Any]]:
        # A snapshot (list() of a dict view is taken in one step): the transactions' write runs on another thread.
        return list(self.transactions.values())

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
        rows = [row for row in self._stored_transactions() if row["account_no"] in wanted]
        return self.spark.createDataFrame([Row(**row) for row in rows], self.transaction_schema)

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

    def holders_of_accounts(self, accounts: DataFrame) -> DataFrame:
        wanted = self._accounts(accounts)
        rows = [(account, customer) for account, customer in self.holders.items() if account in wanted]
        return self.spark.createDataFrame(rows, HOLDER_SCHEMA)

    def rules_of_scopes(self, scopes: DataFrame) -> DataFrame:
        wanted = {(row.scope, row.scope_id) for row in scopes.collect()}
        self.rule_reads.append(wanted)
        rows = []
        for rule in self.rules.values():
            row = rule.as_row()
            if (row["scope"], row["scope_id"]) in wanted:
                rows.append(tuple(str(row[name]) if name == "rule_id" else row[name] for name in RULE_COLUMNS))
        return self.spark.createDataFrame(rows, RULE_SCHEMA)

    def history_of_accounts(self, accounts: DataFrame, since: datetime) -> DataFrame:
        wanted = self._accounts(accounts)
        naive_since = since.astimezone(UTC).replace(tzinfo=None)  # what collect() gives back
        rows = [
            tuple(row[name] for name in HISTORY_COLUMNS)
            for row in self._stored_transactions()
            if row["account_no"] in wanted and row["tranpostdt"] >= naive_since
        ]
        schema = StructType([self.transaction_schema[name] for name in HISTORY_COLUMNS])
        return self.spark.createDataFrame(rows, schema)

    def transactions_of_merchant_days(self, keys: DataFrame) -> DataFrame:
        wanted = {tuple(row) for row in keys.select(*MERCHANT_DAY_KEY).collect()}
        # A snapshot (list() of a dict view is taken in one step): the merchant-day write runs on another thread.
        rows = [row for key, row in list(self.merchant_days.items()) if key[:2] in wanted]
        return self.spark.createDataFrame([Row(**row) for row in rows], MERCHANT_DAY_SCHEMA)

    def not_done(self, hits: DataFrame) -> DataFrame:
        done = self.spark.createDataFrame(list(self.done.items()), DONE_SCHEMA)
        return hits.join(done.select("hit_id"), "hit_id", "left_anti")

    def write_merchant_days(self, rows: DataFrame) -> None:
        for row in rows.collect():
            self.merchant_days[tuple(row[name] for name in TRANSACTION_BY_MERCHANT_DAY_KEY)] = row.asDict()

    def write_rule_hits(self, hits: DataFrame) -> None:
        for row in hits.collect():
            if row.customer_id is not None:
                self.hits[tuple(row[name] for name in RULE_HIT_KEY)] = row.asDict()
            if row.merchant_id is not None:
                self.hits_by_merchant_day[tuple(row[name] for name in RULE_HIT_BY_MERCHANT_DAY_KEY)] = row.asDict()
        for row in hits.collect():  # marked done once in both tables
            self.done[row.hit_id] = row.detected_at

    def fraud_cases(self) -> KnownCases:
        return KnownCases.of(list(self.cases))

    def risk_model(self) -> RiskModel | None:
        return self.model

    def write_scores(self, scores: DataFrame) -> None:
        for row in scores.collect():
            self.scores[tuple(row[name] for name in TRANSACTION_KEY)] = row.asDict()

    def merchant_day_totals(self, merchants: DataFrame, first: date, last: date) -> DataFrame:
        wanted = {row.merchant_id for row in merchants.select("merchant_id").collect()}
        rows = [row for (merchant, day), row in self.totals.items() if merchant in wanted and first <= day <= last]
        return self.spark.createDataFrame([Row(**row) for row in rows], MERCHANT_DAY_TOTAL_SCHEMA)

    def write_merchant_day_totals(self, totals: DataFrame) -> None:
        for row in totals.collect():
            self.totals[(row.merchant_id, row.day)] = row.asDict()


class InMemoryNotifications:
    """The notifications topic: every message published, repeats included, in order."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.messages: list[dict[str, Any]] = []
        self.stored_hits_when_published: list[int] = []  # how many hits the store held at each publish

    def publish(self, hits: DataFrame) -> None:
        rows = hits.collect()
        self.stored_hits_when_published.append(len(self.store.hits) + len(self.store.hits_by_merchant_day))
        self.messages.extend(row.asDict() for row in rows)


def detection_processor(
    store: InMemoryStore,
    window: timedelta = timedelta(hours=24),
    margin: timedelta = timedelta(seconds=30),
    changes_per_batch: int = 10_000,
    on_batch_done: Callable[[BatchMetrics], None] | None = None,
    job: str = "test-query-id",
    recent: timedelta = timedelta(hours=1),
    notifications: InMemoryNotifications | None = None,
    similarity_threshold: float | None = None,
) -> MicroBatchProcessor:
    """The job's foreachBatch body over ``store`` (one attempt: no retry, no watchdog). Transactions posted
    within ``recent`` before the batch are matched against the held changes, older ones against partitions.
    With ``notifications``, the fraud-prevention rules' step runs too, and the similarity step with a
    ``similarity_threshold``."""
    window_seconds = int(window.total_seconds())
    scanner = LateChangeScanner(store, window_seconds, margin, changes_per_batch, job_id=lambda: job)
    recent_changes = RecentChanges(store, window_seconds, int(recent.total_seconds()))
    rules = RuleStep(store, notifications) if notifications is not None else None
    similarity = (
        SimilarityStep(store, notifications, similarity_threshold, 5, feedback_delay_days=7)
        if notifications is not None and similarity_threshold is not None
        else None
    )
    return MicroBatchProcessor(
        store,
        scanner,
        recent_changes,
        window_seconds,
        65536,
        300,
        rules=rules,
        similarity=similarity,
        on_batch_done=on_batch_done,
    )
