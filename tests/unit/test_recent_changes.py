"""The changes held for a batch: exactly cust_change's rows of the last window plus the lateness, read now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from fraudshop.model.changes import ProfileChange
from fraudshop.model.tables import CHANGE_COLUMNS
from fraudshop.pipeline.recent_changes import CHANGE_SCHEMA, RecentChanges
from tests.unit.memory_store import InMemoryStore

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
WINDOW = timedelta(hours=24)
LATENESS = timedelta(hours=1)


def recent_changes(store: InMemoryStore) -> RecentChanges:
    return RecentChanges(store, int(WINDOW.total_seconds()), int(LATENESS.total_seconds()))


def test_the_held_changes_are_the_rows_since_one_window_before_the_recent_transactions(spark: SparkSession) -> None:
    store = InMemoryStore(spark)
    oldest_needed = NOW - LATENESS - WINDOW
    kept = [
        ProfileChange("ACC-1", "CUST-1", "email", oldest_needed),  # a transaction at recent_from falls after it
        # Milliseconds, quotes and non-ASCII text survive the trip through the JVM exactly.
        ProfileChange("ACC-2", 'CUST-"2"\\ é', "phone", NOW - timedelta(milliseconds=1)),
        ProfileChange("ACC-3", "CUST-3", "address", NOW + timedelta(minutes=5)),  # posted ahead: still held
    ]
    dropped = ProfileChange("ACC-1", "CUST-1", "other", oldest_needed - timedelta(milliseconds=1))
    for change in [*kept, dropped]:
        store.record_change(change, NOW)
    held = recent_changes(store)
    recent_from = held.recent_from(NOW)
    assert recent_from == NOW - LATENESS
    frame = held.covering(spark, recent_from)
    assert frame is not None
    expected = spark.createDataFrame([tuple(getattr(c, n) for n in CHANGE_COLUMNS) for c in kept], CHANGE_SCHEMA)
    assert_df_equality(frame, expected, ignore_row_order=True, ignore_nullable=True)


def test_unchanged_rows_reuse_their_frame_and_a_new_change_rebuilds_it(spark: SparkSession) -> None:
    store = InMemoryStore(spark)
    store.record_change(ProfileChange("ACC-1", "CUST-1", "email", NOW - timedelta(hours=2)), NOW)
    held = recent_changes(store)
    first = held.covering(spark, held.recent_from(NOW))
    assert held.covering(spark, held.recent_from(NOW + timedelta(seconds=1))) is first
    store.record_change(ProfileChange("ACC-2", "CUST-2", "email", NOW), NOW)
    second = held.covering(spark, held.recent_from(NOW + timedelta(seconds=2)))
    assert second is not first and second is not None
    assert second.count() == 2


def test_no_change_in_reach_holds_nothing(spark: SparkSession) -> None:
    store = InMemoryStore(spark)
    store.record_change(ProfileChange("ACC-1", "CUST-1", "email", NOW - timedelta(days=3)), NOW)
    held = recent_changes(store)
    assert held.covering(spark, held.recent_from(NOW)) is None
