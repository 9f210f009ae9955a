"""The fraud rule: [last_updated, last_updated + window) on the same account, most recent change named."""

from __future__ import annotations

from datetime import datetime, timedelta

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from fraudshop.model.tables import ALERT_COLUMNS
from fraudshop.pipeline.late_changes import RECORDED_CHANGE_SCHEMA
from fraudshop.pipeline.recent_changes import CHANGE_SCHEMA
from fraudshop.transforms.detection import (
    SUPERSEDED_CUSTOMERS,
    flag_changed_customer_transactions,
    supersede_previous_owners,
    transactions_in_change_windows,
)

DAY = 24 * 3600
CHANGE_AT = datetime(2026, 11, 23, 9, 0, 0)
TRANSACTION_SCHEMA = (
    "account_no string, tranpostdt timestamp, tranid string, amount double, "
    "source_topic string, source_partition int, source_offset long"
)
ALERT_SCHEMA = (
    "customer_id string, tranpostdt timestamp, tranid string, account_no string, amount double, "
    "change_type string, last_updated timestamp, qualifying_changes int, "
    "source_topic string, source_partition int, source_offset long"
)


def transactions(spark: SparkSession, rows: list[tuple[str, datetime, str, float, int]]) -> DataFrame:
    """Rows of (account_no, tranpostdt, tranid, amount, offset) on partition 0 of topic transaction."""
    return spark.createDataFrame(
        [(account, at, tranid, amount, "transaction", 0, offset) for account, at, tranid, amount, offset in rows],
        TRANSACTION_SCHEMA,
    )


def changes(spark: SparkSession, rows: list[tuple[str, datetime, str, str]]) -> DataFrame:
    return spark.createDataFrame(rows, CHANGE_SCHEMA)


def test_window_boundaries(spark: SparkSession) -> None:
    ms = timedelta(milliseconds=1)
    txns = transactions(
        spark,
        [
            ("A", CHANGE_AT - ms, "before", 1.0, 0),  # 1 ms before the change: not flagged
            ("A", CHANGE_AT, "at-change", 2.0, 1),  # at the change instant: flagged
            ("A", CHANGE_AT + timedelta(seconds=DAY) - ms, "last-ms", 3.0, 2),  # last ms of the window: flagged
            ("A", CHANGE_AT + timedelta(seconds=DAY), "plus-24h", 4.0, 3),  # exactly +24 h: not flagged
            ("B", CHANGE_AT, "other-account", 5.0, 4),  # no change on account B
        ],
    )
    alerts = flag_changed_customer_transactions(txns, changes(spark, [("A", CHANGE_AT, "email", "C1")]), DAY)
    assert tuple(alerts.columns) == (*ALERT_COLUMNS, SUPERSEDED_CUSTOMERS)
    expected = spark.createDataFrame(
        [
            ("C1", CHANGE_AT, "at-change", "A", 2.0, "email", CHANGE_AT, 1, "transaction", 0, 1),
            (
                "C1",
                CHANGE_AT + timedelta(seconds=DAY) - ms,
                "last-ms",
                "A",
                3.0,
                "email",
                CHANGE_AT,
                1,
                "transaction",
                0,
                2,
            ),
        ],
        ALERT_SCHEMA,
    )
    assert_df_equality(alerts.select(*ALERT_COLUMNS), expected, ignore_row_order=True, ignore_nullable=True)


def test_window_length_is_configurable(spark: SparkSession) -> None:
    txns = transactions(spark, [("A", CHANGE_AT + timedelta(hours=1), "t1", 1.0, 0)])
    one_change = changes(spark, [("A", CHANGE_AT, "phone", "C1")])
    assert flag_changed_customer_transactions(txns, one_change, 3600).count() == 0
    assert flag_changed_customer_transactions(txns, one_change, 3601).count() == 1


def test_most_recent_qualifying_change_is_named_and_all_are_counted(spark: SparkSession) -> None:
    txns = transactions(spark, [("A", CHANGE_AT + timedelta(hours=5), "t1", 9.5, 7)])
    history = changes(
        spark,
        [
            ("A", CHANGE_AT - timedelta(hours=30), "email", "C-old"),  # outside the window
            ("A", CHANGE_AT, "email", "C1"),
            ("A", CHANGE_AT + timedelta(hours=2), "address", "C1"),
            ("A", CHANGE_AT + timedelta(hours=4), "phone", "C2"),  # newest: the account changed owner
            ("A", CHANGE_AT + timedelta(hours=6), "phone", "C3"),  # after the transaction
        ],
    )
    alerts = flag_changed_customer_transactions(txns, history, DAY)
    expected = spark.createDataFrame(
        [
            (
                "C2",
                CHANGE_AT + timedelta(hours=5),
                "t1",
                "A",
                9.5,
                "phone",
                CHANGE_AT + timedelta(hours=4),
                3,
                "transaction",
                0,
                7,
                ["C1"],
            )
        ],
        f"{ALERT_SCHEMA}, {SUPERSEDED_CUSTOMERS} array<string>",
    )
    # C1's row for t1, written if t1 arrived before C2's change was recorded, is superseded.
    assert_df_equality(alerts, expected, ignore_nullable=True)


def test_a_replayed_record_yields_one_alert_with_the_earliest_lineage(spark: SparkSession) -> None:
    at = CHANGE_AT + timedelta(minutes=1)
    txns = transactions(spark, [("A", at, "t1", 1.0, 12), ("A", at, "t1", 1.0, 3)])
    alerts = flag_changed_customer_transactions(txns, changes(spark, [("A", CHANGE_AT, "email", "C1")]), DAY)
    expected = spark.createDataFrame(
        [("C1", at, "t1", "A", 1.0, "email", CHANGE_AT, 1, "transaction", 0, 3)], ALERT_SCHEMA
    )
    assert_df_equality(alerts.select(*ALERT_COLUMNS), expected, ignore_nullable=True)


def test_no_changes_no_alerts(spark: SparkSession) -> None:
    txns = transactions(spark, [("A", CHANGE_AT, "t1", 1.0, 0)])
    assert flag_changed_customer_transactions(txns, changes(spark, []), DAY).count() == 0


def test_transactions_in_change_windows_selects_each_covered_transaction_once(spark: SparkSession) -> None:
    txns = transactions(
        spark,
        [
            ("A", CHANGE_AT + timedelta(hours=1), "covered-twice", 1.0, 0),
            ("A", CHANGE_AT - timedelta(hours=1), "before", 2.0, 1),
            ("B", CHANGE_AT + timedelta(hours=1), "other-account", 3.0, 2),
        ],
    )
    two_changes = changes(spark, [("A", CHANGE_AT, "email", "C1"), ("A", CHANGE_AT, "phone", "C1")])
    covered = transactions_in_change_windows(txns, two_changes, DAY)
    assert [row.tranid for row in covered.collect()] == ["covered-twice"]


def test_the_previous_owner_of_a_recorded_change_is_superseded_inside_its_window_only(spark: SparkSession) -> None:
    txns = transactions(
        spark,
        [
            ("A", CHANGE_AT + timedelta(hours=1), "in-window", 1.0, 0),
            ("A", CHANGE_AT - timedelta(hours=1), "before", 2.0, 1),
        ],
    )
    # The email change of CHANGE_AT was C1's, then recorded again for C2 (an owner correction); an
    # older change of C1's covers "before" too, so C1's alert for it stays.
    current = changes(spark, [("A", CHANGE_AT, "email", "C2"), ("A", CHANGE_AT - timedelta(hours=2), "phone", "C1")])
    recorded = spark.createDataFrame([("A", CHANGE_AT, "email", "C2", "C1")], RECORDED_CHANGE_SCHEMA)
    alerts = supersede_previous_owners(flag_changed_customer_transactions(txns, current, DAY), recorded, DAY)
    assert alerts.columns == flag_changed_customer_transactions(txns, current, DAY).columns
    rows = {row.tranid: (row.customer_id, row[SUPERSEDED_CUSTOMERS]) for row in alerts.collect()}
    assert rows == {"in-window": ("C2", ["C1"]), "before": ("C1", [])}


def test_an_owner_corrected_back_is_never_superseded_by_itself(spark: SparkSession) -> None:
    txns = transactions(spark, [("A", CHANGE_AT + timedelta(hours=1), "t1", 1.0, 0)])
    current = changes(spark, [("A", CHANGE_AT, "email", "C1")])
    # C1 → C2 → C1: both corrections are handled together.
    recorded = spark.createDataFrame(
        [("A", CHANGE_AT, "email", "C2", "C1"), ("A", CHANGE_AT, "email", "C1", "C2")], RECORDED_CHANGE_SCHEMA
    )
    alerts = supersede_previous_owners(flag_changed_customer_transactions(txns, current, DAY), recorded, DAY)
    assert [(row.customer_id, row[SUPERSEDED_CUSTOMERS]) for row in alerts.collect()] == [("C1", ["C2"])]
