"""Property: whatever the order in which transactions and profile changes arrive, and however
often a record is delivered, the job's micro-batches leave exactly the alerts the rule defines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.model.changes import CHANGE_TYPES, ProfileChange
from fraudshop.pipeline.metrics import BatchMetrics
from fraudshop.pipeline.micro_batch import BATCH_TIMESTAMP
from tests.unit.kafka_rows import KAFKA_SCHEMA
from tests.unit.memory_store import InMemoryStore, detection_processor

WINDOW = timedelta(hours=24)
BASE = datetime(2026, 11, 20, tzinfo=UTC)
# Later than every generated transaction, so none is rejected as posted in the future.
RECEIVED_AT = BASE + timedelta(days=10)


@dataclass(frozen=True)
class Txn:
    account: str
    at: datetime
    tranid: str


def _moment(hour: int, just_before: bool) -> datetime:
    return BASE + timedelta(hours=hour) - (timedelta(milliseconds=1) if just_before else timedelta())


# An hour grid (sometimes 1 ms before the hour), so transactions often fall exactly on a
# change instant or exactly 24 h after it: the rule's boundaries.
moments = st.builds(_moment, st.integers(0, 60), st.booleans())
accounts = st.sampled_from(["ACC-1", "ACC-2"])
transactions = st.builds(Txn, accounts, moments, st.sampled_from([f"T{i}" for i in range(6)]))
changes = st.builds(
    ProfileChange, accounts, st.sampled_from(["CUST-X", "CUST-Y"]), st.sampled_from(CHANGE_TYPES), moments
)
# A step is a micro-batch of transactions (repeats of earlier ones are replays) or a profile change.
Step = list[Txn] | ProfileChange
steps = st.lists(st.one_of(st.lists(transactions, max_size=3), changes), min_size=1, max_size=6)

Alert = tuple[str, str, datetime, str, str, datetime, int]


def expected_alerts(txns: set[Txn], recorded: list[ProfileChange]) -> set[Alert]:
    """The rule, in plain Python."""
    current = {change.key: change for change in recorded}  # re-recording a change overwrites it
    alerts = set()
    for txn in txns:
        qualifying = [
            c
            for c in current.values()
            if c.account_no == txn.account and c.last_updated <= txn.at < c.last_updated + WINDOW
        ]
        if qualifying:
            newest = max(qualifying, key=lambda c: (c.last_updated, c.change_type, c.customer_id))
            alerts.add(
                (
                    newest.customer_id,
                    txn.account,
                    txn.at,
                    txn.tranid,
                    newest.change_type,
                    newest.last_updated,
                    len(qualifying),
                )
            )
    return alerts


def micro_batch(spark: SparkSession, txns: list[Txn], first_offset: int, batch_at: datetime) -> DataFrame:
    """What the job's stream hands foreachBatch: Kafka rows, each with the batch time."""
    rows: list[tuple[object, ...]] = [
        (
            None,
            json.dumps(
                {"account_no": t.account, "tranpostdt": t.at.isoformat(), "tranid": t.tranid, "amount": 1.0}
            ).encode(),
            "transaction",
            0,
            first_offset + i,
            RECEIVED_AT,
        )
        for i, t in enumerate(txns)
    ]
    return spark.createDataFrame(rows, KAFKA_SCHEMA).drop("key").withColumn(BATCH_TIMESTAMP, F.lit(batch_at))


def stored_alerts(store: InMemoryStore) -> set[Alert]:
    return {
        (
            a["customer_id"],
            a["account_no"],
            a["tranpostdt"].replace(tzinfo=UTC),
            a["tranid"],
            a["change_type"],
            a["last_updated"].replace(tzinfo=UTC),
            a["qualifying_changes"],
        )
        for a in store.alerts.values()
    }


# How long before its batch a transaction still counts as recent (matched against the changes held for
# the batch, older ones against their accounts' partitions): the batches run at CLOCK, transactions
# are 24 to 84 h old, so these send all of them, some, or none along each path.
recent_hours = st.sampled_from([0, 50, 1000])
CLOCK = datetime(2026, 11, 23, 12, tzinfo=UTC)
# A change 20 h after BASE, then a batch of another account, then one of a transaction of its account
# 20 h after the change (44 h before CLOCK): run with it recent and not recent, it takes each path.
CHANGE_THEN_TWO_BATCHES: list[Step] = [
    ProfileChange("ACC-1", "CUST-X", "other", BASE + timedelta(hours=20)),
    [Txn("ACC-2", BASE + timedelta(hours=40), "T3")],
    [Txn("ACC-1", BASE + timedelta(hours=40), "T2")],
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=steps, recent=recent_hours)
# A recent transaction (34 h or less before the batch) after a change that is not recent, scanned by an
# earlier batch: the changes held for the batch must reach one window before the oldest recent transaction.
@example(script=CHANGE_THEN_TWO_BATCHES, recent=50)
# The same, the transaction not recent: matched against its account's partition.
@example(script=CHANGE_THEN_TWO_BATCHES, recent=0)
# The account changes owner after its transaction was flagged: CUST-X's alert must go.
@example(
    script=[
        ProfileChange("ACC-1", "CUST-X", "email", BASE),
        [Txn("ACC-1", BASE + timedelta(hours=2), "T0")],
        ProfileChange("ACC-1", "CUST-Y", "phone", BASE + timedelta(hours=1)),
    ],
    recent=50,
)
# The same change recorded again for another customer (an owner correction) after the
# transaction was flagged: CUST-X's alert must go, CUST-Y's take its place.
@example(
    script=[
        ProfileChange("ACC-1", "CUST-X", "email", BASE),
        [Txn("ACC-1", BASE + timedelta(hours=2), "T0")],
        ProfileChange("ACC-1", "CUST-Y", "email", BASE),
    ],
    recent=0,
)
# Transaction first, change later, and the transaction delivered again afterwards.
@example(
    script=[
        [Txn("ACC-2", BASE + timedelta(hours=5), "T1")],
        ProfileChange("ACC-2", "CUST-X", "address", BASE + timedelta(hours=5)),
        [Txn("ACC-2", BASE + timedelta(hours=5), "T1")],
    ],
    recent=1000,
)
def test_alerts_do_not_depend_on_arrival_order(spark: SparkSession, script: list[Step], recent: int) -> None:
    store = InMemoryStore(spark)
    reported: list[BatchMetrics] = []
    # A small late-change bound: catching up over several batches must not change the outcome.
    processor = detection_processor(
        store,
        WINDOW,
        margin=timedelta(seconds=30),
        changes_per_batch=2,
        on_batch_done=reported.append,
        recent=timedelta(hours=recent),
    )
    clock = CLOCK
    processor.wall_clock = lambda: clock
    offset = 0
    delivered: set[Txn] = set()
    recorded: list[ProfileChange] = []
    for step in script:
        clock += timedelta(seconds=1)
        if isinstance(step, ProfileChange):
            store.record_change(step, recorded_at=clock)
            recorded.append(step)
        else:
            processor(micro_batch(spark, step, offset, clock), len(reported))
            offset += len(step)
            delivered.update(step)
    # No more records: the idle scan runs until it finds no late change left to handle.
    while True:
        clock += timedelta(seconds=1)
        scan = processor.scan_if_idle(spark, idle_seconds=0)
        if scan is not None and scan.changes == 0:
            break
    assert stored_alerts(store) == expected_alerts(delivered, recorded)
    assert len(store.transactions) == len(delivered)
    assert len(store.alerts_by_day) == len(store.alerts)
