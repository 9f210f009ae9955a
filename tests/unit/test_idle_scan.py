"""The late-change scan between batches: Spark starts no micro-batch while no record arrives, so a
timer runs the scan then, never beside a batch, and a failing or hanging scan does not go unnoticed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import SparkSession

from fraudshop.model.changes import ProfileChange
from fraudshop.pipeline.late_changes import ScanOutcome
from fraudshop.pipeline.micro_batch import IdleScanTimer
from tests.unit.memory_store import InMemoryStore, detection_processor
from tests.unit.test_arrival_order import BASE, Txn, micro_batch


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_change_recorded_late_is_flagged_by_the_idle_scan_without_any_new_record(spark: SparkSession) -> None:
    store = InMemoryStore(spark)
    processor = detection_processor(store)
    batch_at = BASE + timedelta(minutes=5)
    processor(micro_batch(spark, [Txn("ACC-1", BASE, "T1")], 0, batch_at), 0)
    assert store.alerts == {}
    # Recorded after the batch, for a change before the transaction: only a later scan can flag it.
    store.record_change(ProfileChange("ACC-1", "CUST-1", "email", BASE - timedelta(hours=1)), batch_at)
    processor.wall_clock = lambda: batch_at + timedelta(seconds=2)
    scan = processor.scan_if_idle(spark, idle_seconds=0)
    assert scan is not None and (scan.changes, scan.alert_rows) == (1, 1)
    assert [(key[0], key[2]) for key in store.alerts] == [("CUST-1", "T1")]


def test_the_idle_scan_waits_until_no_batch_has_scanned_for_the_interval(spark: SparkSession) -> None:
    store = InMemoryStore(spark)
    processor = detection_processor(store)
    clock = FakeClock()
    processor.clock = clock
    processor.wall_clock = lambda: BASE
    processor(micro_batch(spark, [Txn("ACC-1", BASE, "T1")], 0, BASE), 0)  # the batch scanned
    clock.now += 1.5
    assert processor.scan_if_idle(spark, idle_seconds=2) is None
    clock.now += 0.5
    assert processor.scan_if_idle(spark, idle_seconds=2) is not None
    assert processor.scan_if_idle(spark, idle_seconds=2) is None  # it just ran


class BrokenProcessor:
    def __init__(self) -> None:
        self.calls = 0

    def scan_if_idle(self, spark: SparkSession, idle_seconds: float) -> None:
        self.calls += 1
        raise ConnectionError("Cassandra restarting")


def test_a_failed_idle_scan_is_logged_and_tried_again(spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    broken = BrokenProcessor()
    timer = IdleScanTimer(broken, spark, 0.01, timeout_seconds=60, on_stuck=lambda *_: None)  # type: ignore[arg-type]
    timer.run_once()
    timer.run_once()
    assert broken.calls == 2
    assert "Cassandra restarting" in caplog.text


class HangingProcessor:
    def __init__(self) -> None:
        self.release = threading.Event()

    def scan_if_idle(self, spark: SparkSession, idle_seconds: float) -> None:
        self.release.wait(10)


def test_a_hanging_idle_scan_calls_the_watchdog(spark: SparkSession) -> None:
    stuck = threading.Event()
    hanging = HangingProcessor()
    timer = IdleScanTimer(hanging, spark, 0.01, timeout_seconds=0.05, on_stuck=lambda *_: stuck.set())  # type: ignore[arg-type]
    worker = threading.Thread(target=timer.run_once)
    worker.start()
    try:
        assert stuck.wait(5)
    finally:
        hanging.release.set()
        worker.join()


def test_the_timer_thread_scans_every_interval_until_stopped(spark: SparkSession) -> None:
    store = InMemoryStore(spark)
    processor = detection_processor(store)
    scans = threading.Semaphore(0)
    original = processor.scan_if_idle

    def counted(spark_session: SparkSession, idle_seconds: float) -> ScanOutcome | None:
        outcome = original(spark_session, idle_seconds)
        scans.release()
        return outcome

    processor.scan_if_idle = counted  # type: ignore[method-assign,assignment]
    processor.wall_clock = lambda: datetime.now(UTC)
    timer = IdleScanTimer(processor, spark, 0.05, timeout_seconds=60, on_stuck=lambda *_: None)
    thread = timer.start()
    try:
        assert scans.acquire(timeout=30) and scans.acquire(timeout=30)
    finally:
        timer.stop()
        thread.join(5)
    assert not thread.is_alive()
