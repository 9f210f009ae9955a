"""The detection job's store in Cassandra: bulk reads and writes through the Spark Cassandra
Connector, the few small driver-side statements (change log, progress, deletes) with
cassandra-driver."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property

from cassandra.cluster import Session
from cassandra.query import PreparedStatement
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.cassandra_client import connect
from fraudshop.config import CassandraConfig
from fraudshop.detection_store import AlertKey
from fraudshop.profile_changes import ProfileChange, recorded_hour

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"


def read_cassandra_table(spark: SparkSession, keyspace: str, table: str, **options: str) -> DataFrame:
    """A lazy read of a Cassandra table: every action reads it anew."""
    return spark.read.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table, **options).load()


def write_cassandra_table(rows: DataFrame, keyspace: str, table: str) -> None:
    rows.write.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table).mode("append").save()


class CassandraStore:
    def __init__(self, spark: SparkSession, cassandra: CassandraConfig, job_id: str) -> None:
        self.spark = spark
        self.cassandra = cassandra
        self.keyspace = cassandra.keyspace
        self.job_id = job_id

    @cached_property
    def _session(self) -> Session:
        # Lives as long as the job; statements name their keyspace (no USE, no ambiguity).
        return connect(self.cassandra).connect()

    @cached_property
    def _delete_alert(self) -> PreparedStatement:
        return self._session.prepare(
            f"DELETE FROM {self.keyspace}.cust_fraud WHERE customer_id = ? AND tranpostdt = ? AND tranid = ?"
        )

    @cached_property
    def _changes_recorded_in_hour(self) -> PreparedStatement:
        # Prepared once: it runs on every micro-batch.
        return self._session.prepare(
            "SELECT recorded_at, account_no, last_updated, change_type, customer_id "
            f"FROM {self.keyspace}.cust_change_log WHERE recorded_hour = ? AND recorded_at >= ?"
        )

    @cached_property
    def _save_progress(self) -> PreparedStatement:
        return self._session.prepare(
            f"INSERT INTO {self.keyspace}.job_progress (job, changes_scanned_until) VALUES (?, ?)"
        )

    def _of_accounts(self, table: str, accounts: DataFrame) -> DataFrame:
        # A join on the partition key that the connector always runs as per-account partition
        # reads (direct join), never as a table scan: its size estimate is unreliable on a
        # young table and would pick a full scan.
        partitions = read_cassandra_table(self.spark, self.keyspace, table, directJoinSetting="on")
        return accounts.distinct().join(partitions, "account_no")

    def write_transactions(self, transactions: DataFrame) -> None:
        write_cassandra_table(transactions, self.keyspace, "transaction")

    def write_rejects(self, rejects: DataFrame) -> None:
        write_cassandra_table(rejects, self.keyspace, "transaction_rejects")

    def changes_of_accounts(self, accounts: DataFrame) -> DataFrame:
        return self._of_accounts("cust_change", accounts)

    def transactions_of_accounts(self, accounts: DataFrame) -> DataFrame:
        return self._of_accounts("transaction", accounts)

    def write_alerts(self, alerts: DataFrame) -> None:
        write_cassandra_table(alerts, self.keyspace, "cust_fraud")
        write_cassandra_table(alerts.withColumn("day", F.to_date("tranpostdt")), self.keyspace, "cust_fraud_by_day")

    def delete_alerts(self, keys: Sequence[AlertKey]) -> None:
        for key in keys:
            self._session.execute(self._delete_alert, key)

    def changes_recorded_since(self, since: datetime) -> list[tuple[datetime, ProfileChange]]:
        hour = recorded_hour(since)
        # One hour past now: a writer whose clock runs ahead files changes in the next bucket.
        last_hour = recorded_hour(datetime.now(UTC) + timedelta(hours=1))
        found = []
        while hour <= last_hour:
            for row in self._session.execute(self._changes_recorded_in_hour, (hour, since)):
                change = ProfileChange(
                    row.account_no, row.customer_id, row.change_type, row.last_updated.replace(tzinfo=UTC)
                )
                found.append((row.recorded_at.replace(tzinfo=UTC), change))
            hour += timedelta(hours=1)
        return found

    def load_scan_progress(self) -> datetime | None:
        row = self._session.execute(
            f"SELECT changes_scanned_until FROM {self.keyspace}.job_progress WHERE job = %s", (self.job_id,)
        ).one()
        return row.changes_scanned_until.replace(tzinfo=UTC) if row else None

    def save_scan_progress(self, scanned_until: datetime) -> None:
        self._session.execute(self._save_progress, (self.job_id, scanned_until))
