"""A failing micro-batch is retried as a whole, boundedly, and its rows are written once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import DataFrame, SparkSession

from fraudshop.micro_batch import MicroBatchProcessor
from tests.unit.memory_store import InMemoryStore
from tests.unit.test_arrival_order import BASE, Txn, micro_batch


class FlakyStore(InMemoryStore):
    """Cassandra restarting: the first ``failures`` transaction writes fail."""

    def __init__(self, spark: SparkSession, failures: int) -> None:
        super().__init__(spark)
        self.failures = failures
        self.attempts = 0

    def write_transactions(self, transactions: DataFrame) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("cassandra is restarting")
        super().write_transactions(transactions)


def run(spark: SparkSession, store: InMemoryStore, attempts: int) -> None:
    processor = MicroBatchProcessor(
        store, 86400, 65536, 300, timedelta(seconds=30), batch_attempts=attempts, batch_retry_backoff_seconds=0.01
    )
    batch = micro_batch(spark, [Txn("ACC-1", BASE, "T1"), Txn("ACC-2", BASE, "T2")], 0, datetime.now(UTC))
    processor(batch, 0)


def test_a_batch_that_fails_twice_succeeds_on_the_third_attempt(spark: SparkSession) -> None:
    store = FlakyStore(spark, failures=2)
    run(spark, store, attempts=3)
    assert store.attempts == 3
    assert sorted(key[2] for key in store.transactions) == ["T1", "T2"]


def test_the_last_failure_stops_the_batch_with_the_error(spark: SparkSession) -> None:
    store = FlakyStore(spark, failures=5)
    with pytest.raises(ConnectionError, match="cassandra is restarting"):
        run(spark, store, attempts=3)
    assert store.attempts == 3
    assert store.transactions == {}


class ExpiredKafkaRecords(InMemoryStore):
    """Reading the batch finds its offsets gone from Kafka: retrying cannot bring them back."""

    attempts = 0

    def write_transactions(self, transactions: DataFrame) -> None:
        self.attempts += 1
        raise RuntimeError(
            "Cannot fetch offset 100 (TopicPartition: transaction-0). Some data may have been lost ... "
            'If you don\'t want your streaming query to fail on such cases, set the source option "failOnDataLoss" '
            'to "false".'
        )


def test_kafka_data_loss_is_not_retried(spark: SparkSession) -> None:
    store = ExpiredKafkaRecords(spark)
    with pytest.raises(RuntimeError, match="failOnDataLoss"):
        run(spark, store, attempts=6)
    assert store.attempts == 1
