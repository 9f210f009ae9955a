"""The detection job's store: bulk reads and writes through the Spark Cassandra Connector, the few
small statements (change log, progress, deletes) through cassandra-driver."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, partial
from typing import Any

from cassandra import InvalidRequest
from cassandra.cluster import ResultSet, Session
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.config import CassandraConfig
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.io.cassandra.schema import insert_statement, key_condition
from fraudshop.io.cassandra.session import connect, prepared
from fraudshop.model.cases import KnownCases
from fraudshop.model.changes import ProfileChange, RecordedChange, recorded_hour
from fraudshop.model.risk import RiskModel
from fraudshop.model.tables import (
    ALERT_KEY,
    CHANGE_COLUMNS,
    JOB_PROGRESS_COLUMNS,
    MERCHANT_DAY_KEY,
    MERCHANT_DAY_TOTAL_COLUMNS,
    PREVIOUS_CUSTOMER,
    RULE_COLUMNS,
    RULE_PARTITION_KEY,
    TRANSACTION_BY_MERCHANT_DAY_COLUMNS,
    AlertKey,
)
from fraudshop.pipeline.side_by_side import run_side_by_side
from fraudshop.transforms.rules import HISTORY_COLUMNS

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"


def read_cassandra_table(spark: SparkSession, keyspace: str, table: str, **options: str) -> DataFrame:
    """A lazy read of a Cassandra table: every action reads it anew."""
    return spark.read.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table, **options).load()


def write_cassandra_table(rows: DataFrame, keyspace: str, table: str) -> None:
    rows.write.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table).mode("append").save()


class SchemaOutOfDate(RuntimeError):
    """The keyspace lacks a table, column or index this version of the job reads."""


class CassandraStore:
    """The :class:`~fraudshop.pipeline.ports.DetectionStore` of the job."""

    def __init__(self, spark: SparkSession, cassandra: CassandraConfig) -> None:
        self.spark = spark
        self.cassandra = cassandra
        self.keyspace = cassandra.keyspace
        self._writers = ThreadPoolExecutor(2, thread_name_prefix="alert-writes")
        self._hit_writers = ThreadPoolExecutor(2, thread_name_prefix="hit-writes")

    @cached_property
    def _session(self) -> Session:
        # Lives as long as the job; statements name their keyspace (no USE, no ambiguity).
        return connect(self.cassandra).connect()

    def _execute(self, cql: str, values: Sequence[Any]) -> ResultSet:
        # Each statement is prepared once: they run on every micro-batch.
        return self._session.execute(prepared(self._session, cql), values)

    def _of_partitions(
        self, table: str, keys: DataFrame, stored: Callable[[DataFrame], DataFrame] = lambda t: t
    ) -> DataFrame:
        """The rows of ``table``'s partitions named by ``keys`` (its partition key's columns), of those
        ``stored`` keeps. Always a direct join (one read per partition), never a table scan: the connector's
        size estimate is unreliable on a young table and would pick a full scan."""
        partitions = stored(read_cassandra_table(self.spark, self.keyspace, table, directJoinSetting="on"))
        return keys.distinct().join(partitions, keys.columns)

    def _of_accounts(self, table: str, accounts: DataFrame) -> DataFrame:
        return self._of_partitions(table, accounts.select("account_no"))

    def write_transactions(self, transactions: DataFrame) -> None:
        write_cassandra_table(transactions, self.keyspace, "transaction")

    def write_rejects(self, rejects: DataFrame) -> None:
        write_cassandra_table(rejects, self.keyspace, "transaction_rejects")

    def changes_of_accounts(self, accounts: DataFrame) -> DataFrame:
        return self._of_accounts("cust_change", accounts)

    def changes_since(self, since: datetime) -> list[tuple[Any, ...]]:
        # The SAI index on last_updated answers this without a partition key (bank.cql).
        cql = f"SELECT {', '.join(CHANGE_COLUMNS)} FROM {self.keyspace}.cust_change WHERE last_updated >= ?"
        last_updated = CHANGE_COLUMNS.index("last_updated")
        try:
            rows = self._execute(cql, (since,))
        except InvalidRequest as error:  # a keyspace created before the index, or Cassandra 4
            raise SchemaOutOfDate(
                f"{self.keyspace}.cust_change cannot be read by last_updated ({error}): it needs the index of "
                "bank.cql on Cassandra 5; run `fraudshop schema apply` with this config"
            ) from error
        return [  # every page
            tuple(value.replace(tzinfo=UTC) if i == last_updated else value for i, value in enumerate(row))
            for row in rows
        ]

    def transactions_of_accounts(self, accounts: DataFrame) -> DataFrame:
        return self._of_accounts("transaction", accounts)

    def write_alerts(self, alerts: DataFrame) -> None:
        by_day = alerts.withColumn("day", F.to_date("tranpostdt"))
        run_side_by_side(
            self._writers,
            partial(write_cassandra_table, alerts, self.keyspace, "cust_fraud"),
            partial(write_cassandra_table, by_day, self.keyspace, "cust_fraud_by_day"),
        )

    def delete_alerts(self, keys: Sequence[AlertKey]) -> None:
        delete = f"DELETE FROM {self.keyspace}.cust_fraud WHERE {key_condition(ALERT_KEY)}"
        for key in keys:
            self._execute(delete, key)

    def changes_recorded_since(self, since: datetime, limit: int) -> list[RecordedChange]:
        hour = recorded_hour(since)
        # One hour past now: a writer whose clock runs ahead files changes in the next bucket.
        last_hour = recorded_hour(datetime.now(UTC) + timedelta(hours=1))
        columns = ", ".join(("recorded_at", *CHANGE_COLUMNS, PREVIOUS_CUSTOMER))
        cql = (  # in clustering order: by recorded_at
            f"SELECT {columns} FROM {self.keyspace}.cust_change_log "
            "WHERE recorded_hour = ? AND recorded_at >= ? LIMIT ?"
        )
        found: list[RecordedChange] = []
        # Hour by hour, only as far as the limit: after an outage the rest waits for the next scans.
        while hour <= last_hour and len(found) < limit:
            for row in self._execute(cql, (hour, since, limit - len(found))):
                fields = {name: getattr(row, name) for name in CHANGE_COLUMNS}
                fields["last_updated"] = row.last_updated.replace(tzinfo=UTC)
                previous = getattr(row, PREVIOUS_CUSTOMER)
                found.append(RecordedChange(row.recorded_at.replace(tzinfo=UTC), ProfileChange(**fields), previous))
            hour += timedelta(hours=1)
        return found

    def load_scan_progress(self, job: str) -> datetime | None:
        job_column, scanned_until = JOB_PROGRESS_COLUMNS
        cql = f"SELECT {scanned_until} FROM {self.keyspace}.job_progress WHERE {key_condition((job_column,))}"
        row = self._execute(cql, (job,)).one()
        return row[0].replace(tzinfo=UTC) if row else None

    def save_scan_progress(self, job: str, scanned_until: datetime) -> None:
        self._execute(insert_statement(self.keyspace, "job_progress", JOB_PROGRESS_COLUMNS), (job, scanned_until))

    def holders_of_accounts(self, accounts: DataFrame) -> DataFrame:
        return self._of_accounts("account_holder", accounts)

    def rules_of_scopes(self, scopes: DataFrame) -> DataFrame:
        return self._of_partitions("rule", scopes.select(*RULE_PARTITION_KEY)).select(*RULE_COLUMNS)

    def history_of_accounts(self, accounts: DataFrame, since: datetime) -> DataFrame:
        # The range is on the clustering column: each account's read starts at `since`.
        recent = partial(_posted_since, since=since)
        return self._of_partitions("transaction", accounts.select("account_no"), recent).select(*HISTORY_COLUMNS)

    def transactions_of_merchant_days(self, keys: DataFrame) -> DataFrame:
        merchant_days = keys.select(*MERCHANT_DAY_KEY)
        return self._of_partitions("transaction_by_merchant_day", merchant_days).select(
            *TRANSACTION_BY_MERCHANT_DAY_COLUMNS
        )

    def not_done(self, hits: DataFrame) -> DataFrame:
        # A left outer direct join (one read per hit, no shuffle of the hits) keeping those without a mark.
        done = read_cassandra_table(self.spark, self.keyspace, "rule_hit_done", directJoinSetting="on")
        marked = done.select("hit_id", F.col("done_at").alias("_done_at"))
        return hits.join(marked, "hit_id", "left").where(F.col("_done_at").isNull()).drop("_done_at")

    def write_merchant_days(self, rows: DataFrame) -> None:
        write_cassandra_table(rows, self.keyspace, "transaction_by_merchant_day")

    def write_rule_hits(self, hits: DataFrame) -> None:
        # The two hit tables side by side, then rule_hit_done: a hit marked done is in both tables.
        by_customer = hits.where(F.col("customer_id").isNotNull())
        at_merchant = hits.where(F.col("merchant_id").isNotNull())
        run_side_by_side(
            self._hit_writers,
            partial(write_cassandra_table, by_customer, self.keyspace, "rule_hit"),
            partial(write_cassandra_table, at_merchant, self.keyspace, "rule_hit_by_merchant_day"),
        )
        done = hits.select("hit_id", F.col("detected_at").alias("done_at"))
        write_cassandra_table(done, self.keyspace, "rule_hit_done")

    def fraud_cases(self) -> KnownCases:
        return KnownCases.of(CaseStore(self._session, self.keyspace).all_cases())

    def risk_model(self) -> RiskModel | None:
        return ModelStore(self._session, self.keyspace).current()

    def write_scores(self, scores: DataFrame) -> None:
        write_cassandra_table(scores, self.keyspace, "transaction")

    def merchant_day_totals(self, merchants: DataFrame, first: date, last: date) -> DataFrame:
        # The range is on the clustering column: one read per merchant.
        def in_range(totals: DataFrame) -> DataFrame:
            return totals.where(F.col("day").between(F.lit(first), F.lit(last)))

        return self._of_partitions("merchant_day_total", merchants.select("merchant_id"), in_range).select(
            *MERCHANT_DAY_TOTAL_COLUMNS
        )

    def write_merchant_day_totals(self, totals: DataFrame) -> None:
        write_cassandra_table(totals, self.keyspace, "merchant_day_total")


def _posted_since(transactions: DataFrame, since: datetime) -> DataFrame:
    return transactions.where(F.col("tranpostdt") >= F.lit(since))
