"""A failing micro-batch is retried as a whole, boundedly and inside the watchdog's budget, and its
rows are written once; a batch is never left unprocessed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession

from fraudshop.pipeline.resilience import ResilientBatch
from tests.unit.memory_store import InMemoryStore, detection_processor
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


class FakeTime:
    """A clock that moves only when the code under test sleeps or an attempt says it took time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(spark: SparkSession, store: InMemoryStore, attempts: int) -> FakeTime:
    time = FakeTime()
    resilient = ResilientBatch(
        detection_processor(store), attempts, backoff_seconds=2, timeout_seconds=300, clock=time.clock, sleep=time.sleep
    )
    batch = micro_batch(spark, [Txn("ACC-1", BASE, "T1"), Txn("ACC-2", BASE, "T2")], 0, datetime.now(UTC))
    resilient(batch, 0)
    return time


def test_a_batch_that_fails_twice_succeeds_on_the_third_attempt(spark: SparkSession) -> None:
    store = FlakyStore(spark, failures=2)
    time = run(spark, store, attempts=3)
    assert store.attempts == 3
    assert time.sleeps == [2, 4]
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


def never_called(records: DataFrame, batch_id: int) -> None:
    raise AssertionError("not expected to run")


@pytest.mark.parametrize("attempts", [0, -1])
def test_no_attempt_at_all_is_refused_instead_of_committing_an_unprocessed_batch(attempts: int) -> None:
    # Defect 2: with 0 attempts the loop never ran and Spark committed the batch's offsets.
    with pytest.raises(ValueError, match="at least 1 attempt"):
        ResilientBatch(never_called, attempts, backoff_seconds=2, timeout_seconds=300)


class FailingAttempts:
    """A batch function whose every attempt fails after ``duration`` seconds of the fake clock."""

    def __init__(self, time: FakeTime, duration: float) -> None:
        self.time = time
        self.duration = duration
        self.ends: list[float] = []

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        self.time.now += self.duration
        self.ends.append(self.time.now)
        raise TimeoutError(f"attempt {len(self.ends)} timed out")


def test_backoff_doubles_from_the_configured_seconds_up_to_the_configured_attempts() -> None:
    time = FakeTime()
    attempts = FailingAttempts(time, duration=0)
    resilient = ResilientBatch(attempts, 6, 2, timeout_seconds=None, clock=time.clock, sleep=time.sleep)
    with pytest.raises(TimeoutError, match="attempt 6 timed out"):
        resilient(None, 0)  # type: ignore[arg-type]  # the batch function never reads it
    assert time.sleeps == [2, 4, 8, 16, 32]


def test_retries_stop_before_the_watchdog_with_the_last_error() -> None:
    # Defect 6: 6 attempts of 20 s and 62 s of backoff would run past a 100 s watchdog.
    time = FakeTime()
    attempts = FailingAttempts(time, duration=20)
    # The watchdog is a real timer: on a fake clock it never fires here, so the check is the schedule.
    resilient = ResilientBatch(attempts, 6, 2, 100, clock=time.clock, sleep=time.sleep, on_stuck=lambda *_: None)
    with pytest.raises(TimeoutError, match="attempt 4 timed out"):
        resilient(None, 3)  # type: ignore[arg-type]
    # Attempts end at 20, 42, 66 and 94 s; a fifth would start at 110 s, after the deadline.
    assert attempts.ends == [20, 42, 66, 94]
    assert time.sleeps == [2, 4, 8]


def test_the_watchdog_fires_only_for_a_batch_that_outlives_its_timeout() -> None:
    stuck = threading.Event()
    released = threading.Event()

    def hangs(records: DataFrame, batch_id: int) -> None:
        assert stuck.wait(10), "the watchdog did not fire"
        released.set()

    ResilientBatch(hangs, 1, 0, 0.05, on_stuck=lambda batch, timeout: stuck.set())(None, 0)  # type: ignore[arg-type]
    assert released.is_set()

    quick_stuck = threading.Event()
    ResilientBatch(lambda records, batch_id: None, 1, 0, 0.2, on_stuck=lambda b, t: quick_stuck.set())(None, 1)  # type: ignore[arg-type]
    assert not quick_stuck.wait(0.4)  # cancelled when the batch finished
