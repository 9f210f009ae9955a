"""The late-change scan after downtime: bounded per scan, oldest first, progress saved after each
scan, nothing lost or handled twice, and resumed by a restarted job. No record arrives here: the scan
runs as the job runs it then, between batches (MicroBatchProcessor.scan_if_idle)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import SparkSession

from fraudshop.model.changes import ProfileChange
from fraudshop.pipeline.late_changes import ScanOutcome
from fraudshop.pipeline.micro_batch import MicroBatchProcessor
from tests.unit.memory_store import InMemoryStore, detection_processor
from tests.unit.test_arrival_order import BASE, Txn, micro_batch

#: When the job comes back: the changes below were recorded while it was down.
RESTARTED_AT = datetime(2026, 11, 23, 12, tzinfo=UTC)
ACCOUNTS = [f"ACC-{i}" for i in range(7)]


def store_after_an_outage(spark: SparkSession, recorded_at: list[datetime]) -> InMemoryStore:
    """One transaction per account, stored before the outage; one change per account covering it,
    recorded during the outage at the given instants; the job scanned up to the outage."""
    store = InMemoryStore(spark)
    txns = [Txn(account, BASE + timedelta(hours=1), "T") for account in ACCOUNTS]
    detection_processor(store)(micro_batch(spark, txns, 0, RESTARTED_AT - timedelta(hours=3)), 0)
    assert store.alerts == {}
    for account, at in zip(ACCOUNTS, recorded_at, strict=True):
        store.record_change(ProfileChange(account, f"CUST-{account}", "email", BASE), at)
    return store


def idle_scan(spark: SparkSession, processor: MicroBatchProcessor, at: datetime) -> ScanOutcome:
    processor.wall_clock = lambda: at
    scan = processor.scan_if_idle(spark, idle_seconds=0)
    assert scan is not None
    return scan


def run_scans(spark: SparkSession, store: InMemoryStore, count: int, per_scan: int) -> list[ScanOutcome]:
    processor = detection_processor(store, changes_per_batch=per_scan)
    return [idle_scan(spark, processor, RESTARTED_AT + timedelta(seconds=second)) for second in range(count)]


def flagged_accounts(store: InMemoryStore) -> set[str]:
    return {alert["account_no"] for alert in store.alerts.values()}


def test_a_long_backlog_is_caught_up_a_bounded_chunk_per_batch_with_progress_saved_each_time(
    spark: SparkSession,
) -> None:
    outage_start = RESTARTED_AT - timedelta(hours=2)
    recorded = [outage_start + timedelta(minutes=10 * i) for i in range(len(ACCOUNTS))]
    store = store_after_an_outage(spark, recorded)
    [first] = run_scans(spark, store, 1, per_scan=3)
    assert (first.changes, flagged_accounts(store)) == (3, set(ACCOUNTS[:3]))
    # Saved after the chunk: up to the last change it handled, not to the batch's time.
    assert list(store.scan_progress.values()) == [recorded[2]]

    # The job is restarted: it resumes from the saved progress, and the bound holds. A restarted
    # job does not know which entries of the margin it handled: it handles the last one again.
    reported = run_scans(spark, store, 3, per_scan=3)
    assert [scan.changes for scan in reported] == [3, 2, 0]
    assert flagged_accounts(store) == set(ACCOUNTS)
    assert list(store.scan_progress.values()) == [RESTARTED_AT + timedelta(seconds=2)]


def test_changes_recorded_at_one_instant_are_neither_lost_nor_redone_across_the_bound(spark: SparkSession) -> None:
    same_instant = RESTARTED_AT - timedelta(minutes=5)
    store = store_after_an_outage(spark, [same_instant] * len(ACCOUNTS))
    reported = run_scans(spark, store, 5, per_scan=2)
    assert [scan.changes for scan in reported] == [2, 2, 2, 1, 0]
    assert flagged_accounts(store) == set(ACCOUNTS)


def test_a_change_that_becomes_visible_late_inside_the_margin_is_still_handled(spark: SparkSession) -> None:
    store = store_after_an_outage(spark, [RESTARTED_AT - timedelta(minutes=1)] * len(ACCOUNTS))
    processor = detection_processor(store, margin=timedelta(seconds=30))
    reported = [idle_scan(spark, processor, RESTARTED_AT)]
    # Recorded 10 s before the scan ended, visible only now (clock skew, write latency).
    late_visible = ProfileChange("ACC-0", "CUST-LATE", "phone", BASE + timedelta(minutes=1))
    store.record_change(late_visible, RESTARTED_AT - timedelta(seconds=10))
    reported.append(idle_scan(spark, processor, RESTARTED_AT + timedelta(seconds=1)))
    reported.append(idle_scan(spark, processor, RESTARTED_AT + timedelta(seconds=2)))
    assert [scan.changes for scan in reported] == [len(ACCOUNTS), 1, 0]
    assert {a["customer_id"] for a in store.alerts.values() if a["account_no"] == "ACC-0"} == {"CUST-LATE"}


def test_an_entry_from_a_writer_whose_clock_runs_ahead_does_not_move_the_scan_past_changes_recorded_now(
    spark: SparkSession,
) -> None:
    store = InMemoryStore(spark)
    txns = [Txn(account, BASE + timedelta(hours=1), "T") for account in ACCOUNTS]
    detection_processor(store)(micro_batch(spark, txns, 0, RESTARTED_AT - timedelta(hours=3)), 0)
    ahead = RESTARTED_AT + timedelta(minutes=10)  # a writer's clock 10 minutes fast
    for account, at in ((ACCOUNTS[0], RESTARTED_AT - timedelta(minutes=2)), (ACCOUNTS[1], ahead)):
        store.record_change(ProfileChange(account, f"CUST-{account}", "email", BASE), at)
    processor = detection_processor(store, changes_per_batch=2)
    idle_scan(spark, processor, RESTARTED_AT)  # exactly the bound: not known to be caught up
    assert flagged_accounts(store) == set(ACCOUNTS[:2])
    assert max(store.scan_progress.values()) <= RESTARTED_AT
    # A writer with a correct clock records a change right after that batch: it is not skipped.
    store.record_change(ProfileChange(ACCOUNTS[2], f"CUST-{ACCOUNTS[2]}", "email", BASE), RESTARTED_AT)
    idle_scan(spark, processor, RESTARTED_AT + timedelta(seconds=2))
    assert flagged_accounts(store) == set(ACCOUNTS[:3])
