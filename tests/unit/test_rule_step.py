"""The rules' step inside the job's micro-batch (parse, judge, notify, store), over an in-memory store: the
hits stored are the oracle's, each notified before it is stored and with one id, a replayed batch adds no
hit, and a batch reads only the rules of its own accounts, their holders and its merchants."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.model.rule_evaluation import Hit, Txn, judge_batch
from fraudshop.model.rules import (
    AmountOver,
    MerchantAmountOver,
    MerchantDailyCount,
    MerchantMonthlyCap,
    NewMerchant,
    NotifyEveryTransaction,
    Rule,
    RuleDefinition,
)
from fraudshop.pipeline.micro_batch import BATCH_TIMESTAMP, MicroBatchProcessor
from tests.unit.kafka_rows import KAFKA_SCHEMA
from tests.unit.memory_store import InMemoryNotifications, InMemoryStore, detection_processor

CATEGORY = {"APPSTORE": "5818", "COFFEE": "5814", "GROCER": "5411"}
HOLDERS = {"ACC-1": "CUST-1", "ACC-2": "CUST-1", "ACC-3": "CUST-2"}
RECEIVED_AT = datetime(2026, 3, 1, tzinfo=UTC)


def rule(number: int, definition: RuleDefinition) -> Rule:
    return Rule(uuid.UUID(int=number), definition, datetime(2026, 1, 1, tzinfo=UTC))


RULES = [
    rule(1, MerchantMonthlyCap(customer_id="CUST-1", amount_limit=20.0, capped_merchant_id="APPSTORE")),
    rule(2, MerchantAmountOver(merchant_id="COFFEE", amount_limit=50.0)),
    rule(3, MerchantDailyCount(merchant_id="COFFEE", amount_above=20.0, count_limit=1)),
    rule(4, NewMerchant(customer_id="CUST-2", account_no="ACC-3", lookback_days=30)),
    rule(5, AmountOver(customer_id="CUST-1", account_no="ACC-2", amount_limit=100.0)),
    rule(6, NotifyEveryTransaction(customer_id="CUST-2")),
    # Nobody's: never read, never hits.
    rule(7, AmountOver(customer_id="CUST-9", amount_limit=1.0)),
]


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 2, day, hour, tzinfo=UTC)


def txn(account: str, moment: datetime, tranid: str, amount: float, merchant: str) -> Txn:
    return Txn(account, moment, tranid, amount, merchant, CATEGORY[merchant])


# Three batches, each out of event-time order; the third repeats a record of the first.
BATCHES = [
    [
        txn("ACC-1", at(3, 10), "T1", 12.0, "APPSTORE"),
        txn("ACC-3", at(3, 9), "T2", 30.0, "COFFEE"),
        txn("ACC-1", at(2, 10), "T3", 5.0, "APPSTORE"),
    ],
    [
        txn("ACC-1", at(1, 10), "T4", 4.99, "APPSTORE"),  # late, but earlier: after T1 and T3 were judged
        txn("ACC-2", at(3, 12), "T5", 61.0, "COFFEE"),
        txn("ACC-3", at(3, 13), "T6", 8.0, "COFFEE"),
        txn("ACC-2", at(4, 1), "T7", 150.0, "GROCER"),
    ],
    [
        txn("ACC-1", at(5, 10), "T8", 1.0, "APPSTORE"),
        txn("ACC-3", at(3, 9), "T2", 30.0, "COFFEE"),
        txn("ACC-3", at(6, 9), "T9", 25.0, "COFFEE"),
    ],
]


def kafka_batch(spark: SparkSession, txns: Sequence[Txn], first_offset: int) -> DataFrame:
    rows = []
    for offset, t in enumerate(txns, first_offset):
        record = {
            "account_no": t.account_no,
            "tranpostdt": t.tranpostdt.isoformat(),
            "tranid": t.tranid,
            "amount": t.amount,
            "merchant_id": t.merchant_id,
            "merchant_category": t.merchant_category,
            "channel": "pos",
        }
        rows.append((None, json.dumps(record).encode(), "transaction", 0, offset, RECEIVED_AT))
    return spark.createDataFrame(rows, KAFKA_SCHEMA).withColumn(BATCH_TIMESTAMP, F.lit(RECEIVED_AT))


def pipeline_with_rules(spark: SparkSession) -> tuple[InMemoryStore, InMemoryNotifications, MicroBatchProcessor]:
    """The job's micro-batch over an in-memory store holding :data:`RULES` and :data:`HOLDERS`."""
    store = InMemoryStore(spark)
    store.holders.update(HOLDERS)
    for r in RULES:
        store.add_rule(r)
    notifications = InMemoryNotifications(store)
    return store, notifications, detection_processor(store, notifications=notifications)


def stored_hits(store: InMemoryStore) -> set[Hit]:
    rows = {row["hit_id"]: row for row in (*store.hits.values(), *store.hits_by_merchant_day.values())}
    return {
        Hit(
            row["rule_id"],
            row["kind"],
            row["action"],
            row["customer_id"],
            row["merchant_id"],
            row["day"],
            row["account_no"],
            row["tranpostdt"].replace(tzinfo=UTC),
            row["tranid"],
            row["amount"],
            None if row["evidence_value"] is None else round(row["evidence_value"], 6),
            row["evidence_limit"],
            row["hit_id"],
            row["merchant_category"],
            row["source_offset"],
        )
        for row in rows.values()
    }


def test_the_batches_store_and_notify_the_oracles_hits_once_each(spark: SparkSession) -> None:
    store, notifications, process = pipeline_with_rules(spark)

    expected: set[Hit] = set()
    known: dict[tuple[str, datetime, str], Txn] = {}
    done: set[str] = set()
    offset = 0
    for batch_id, txns in enumerate(BATCHES):
        positioned = [replace(t, position=(0, offset + i)) for i, t in enumerate(txns)]
        new = judge_batch(positioned, known, RULES, HOLDERS, done)
        expected |= new
        stored_before = len(store.hits) + len(store.hits_by_merchant_day)
        process(kafka_batch(spark, txns, offset), batch_id)
        # Notified before stored: when the batch published, the store held only earlier batches' hits.
        assert notifications.stored_hits_when_published[-1] == stored_before
        assert stored_hits(store) == expected
        known.update({t.key: t for t in positioned})
        done |= {hit.hit_id for hit in new}
        offset += len(txns)

    # The worked story: T3 then T1 take the app store to 17.00; late T4 (4.99, earlier) makes 21.99 by T1's
    # time, but T1 was judged when it arrived; T8 sees 22.99 > 20 and asks for confirmation.
    by_tranid = {(h.tranid, h.kind) for h in expected}
    assert ("T8", "merchant_monthly_cap") in by_tranid
    assert ("T1", "merchant_monthly_cap") not in by_tranid
    assert ("T5", "merchant_amount_over") in by_tranid  # 61 at the coffee shop: staff confirm
    assert ("T5", "merchant_daily_count") in by_tranid  # the second over 20 on the 3rd
    assert ("T7", "amount_over") in by_tranid
    # The record of T2 delivered again in the third batch is the same hit, with the same id.
    ids = [message["hit_id"] for message in notifications.messages]
    assert set(ids) == {h.hit_id for h in expected}
    assert len({(m["hit_id"], m["rule_id"], m["tranid"]) for m in notifications.messages}) == len(set(ids))


def test_a_replayed_batch_stores_no_new_hit_and_notifies_the_same_ids(spark: SparkSession) -> None:
    store, notifications, process = pipeline_with_rules(spark)
    batch = kafka_batch(spark, BATCHES[0] + BATCHES[1], 0)
    process(batch, 0)
    first_rows = {**store.hits, **{("by_day", *k): v for k, v in store.hits_by_merchant_day.items()}}
    first_ids = {m["hit_id"] for m in notifications.messages}
    sent = len(notifications.messages)
    process(batch, 0)  # the same batch again: Spark's replay after a crash
    assert {**store.hits, **{("by_day", *k): v for k, v in store.hits_by_merchant_day.items()}} == first_rows
    # Every hit was done: none is announced again.
    assert len(notifications.messages) == sent
    assert {m["hit_id"] for m in notifications.messages} == first_ids


def test_a_batch_that_failed_before_marking_its_hits_done_announces_them_again_with_the_same_ids(
    spark: SparkSession,
) -> None:
    store, notifications, process = pipeline_with_rules(spark)
    batch = kafka_batch(spark, BATCHES[0] + BATCHES[1], 0)
    process(batch, 0)
    first = [(m["hit_id"], m["tranid"]) for m in notifications.messages]
    store.done.clear()  # as if it died after writing the hits, before marking them done
    process(batch, 0)
    again = [(m["hit_id"], m["tranid"]) for m in notifications.messages[len(first) :]]
    assert sorted(again) == sorted(first)  # the same ids, in whatever order the batch's partitions send them
    assert len(store.done) == len(first)


def test_a_batch_reads_the_rules_of_its_accounts_holders_and_merchants_only(spark: SparkSession) -> None:
    store, _, process = pipeline_with_rules(spark)
    process(kafka_batch(spark, [txn("ACC-3", at(3, 9), "T1", 3.0, "GROCER")], 0), 0)
    assert store.rule_reads == [{("account", "ACC-3"), ("customer", "CUST-2"), ("merchant", "GROCER")}]


def test_without_rules_a_batch_stores_its_merchant_days_and_nothing_else(spark: SparkSession) -> None:
    store = InMemoryStore(spark)
    notifications = InMemoryNotifications(store)
    process = detection_processor(store, notifications=notifications)
    process(kafka_batch(spark, BATCHES[0], 0), 0)
    assert len(store.merchant_days) == 3 and not store.hits and not notifications.messages
    assert {key[:2] for key in store.merchant_days} == {
        ("APPSTORE", date(2026, 2, 3)),
        ("COFFEE", date(2026, 2, 3)),
        ("APPSTORE", date(2026, 2, 2)),
    }
