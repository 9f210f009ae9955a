"""The rule engine's transforms (fraudshop.transforms.rules): each kind on worked examples (chispa), and a
property: over any arrival order, batching, replay and duplicate delivery, the micro-batches' hits are
those of the plain-Python oracle (fraudshop/model/rule_evaluation.py), and a replayed batch finds the same hits."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chispa import assert_df_equality
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from fraudshop.model.rule_evaluation import Hit, Txn, history_since, judge_batch
from fraudshop.model.rules import (
    AmountOver,
    MerchantAmountOver,
    MerchantDailyCount,
    MerchantMonthlyCap,
    NewMerchant,
    NotifyEveryTransaction,
    Rule,
    RuleDefinition,
    daily_hit_id,
    hit_id,
    parameters_text,
    reason,
)
from fraudshop.model.tables import MERCHANT_DAY_KEY, RULE_COLUMNS
from fraudshop.transforms.rules import (
    HISTORY_COLUMNS,
    HIT_COLUMNS,
    distinct_transactions,
    merchant_day_rows,
    rule_hits,
)
from tests.unit.memory_store import DONE_SCHEMA, HOLDER_SCHEMA, RULE_SCHEMA

TOPIC = "transaction"
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
HOLDERS = {"A1": "C1", "A2": "C1", "A3": "C2"}
CATEGORY = {"M1": "5814", "M2": "5818", "M3": "5818"}

BATCH_SCHEMA = StructType(
    [
        StructField("account_no", StringType()),
        StructField("tranpostdt", TimestampType()),
        StructField("tranid", StringType()),
        StructField("amount", DoubleType()),
        StructField("merchant_id", StringType()),
        StructField("merchant_category", StringType()),
        StructField("source_topic", StringType()),
        StructField("source_partition", IntegerType()),
        StructField("source_offset", LongType()),
    ]
)


def rule(definition: RuleDefinition, number: int = 1) -> Rule:
    return Rule(uuid.UUID(int=number), definition, CREATED)


def txn(account: str, at: datetime, tranid: str, amount: float, merchant: str | None = "M1", offset: int = 0) -> Txn:
    return Txn(account, at, tranid, amount, merchant, CATEGORY.get(merchant or ""), (0, offset))


def batch_frame(spark: SparkSession, txns: Sequence[Txn]) -> DataFrame:
    rows = [
        (t.account_no, t.tranpostdt, t.tranid, t.amount, t.merchant_id, t.merchant_category, TOPIC, *t.position)
        for t in txns
    ]
    return spark.createDataFrame(rows, BATCH_SCHEMA)


def rule_frame(spark: SparkSession, rules: Sequence[Rule]) -> DataFrame:
    rows = []
    for r in rules:
        row: dict[str, Any] = r.as_row()
        row["rule_id"] = str(row["rule_id"])
        rows.append(tuple(row[name] for name in RULE_COLUMNS))
    return spark.createDataFrame(rows, RULE_SCHEMA)


def judge(
    spark: SparkSession,
    batch: Sequence[Txn],
    rules: Sequence[Rule],
    stored: Sequence[Txn] = (),
    done: Sequence[str] = (),
    holders: dict[str, str] = HOLDERS,
) -> DataFrame:
    """The hits of ``batch``, ``stored`` before it, ``done`` the ids of the hits done before."""
    stored_frame = batch_frame(spark, stored)
    done_frame = spark.createDataFrame([(identity, CREATED) for identity in done], DONE_SCHEMA)
    return rule_hits(
        distinct_transactions(batch_frame(spark, batch)),
        rule_frame(spark, rules),
        spark.createDataFrame(list(holders.items()), HOLDER_SCHEMA),
        stored_frame.select(*HISTORY_COLUMNS),
        lambda keys: merchant_day_rows(stored_frame).join(keys.distinct(), list(MERCHANT_DAY_KEY)),
        lambda hits: hits.join(done_frame.select("hit_id"), "hit_id", "left_anti"),
        # As the job passes them: the plan leaves out the parts no rule of the batch needs.
        kinds={r.kind.value for r in rules},
    )


def hits_of(frame: DataFrame) -> set[Hit]:
    assert tuple(frame.columns) == HIT_COLUMNS
    found = set()
    for row in frame.collect():
        found.add(
            Hit(
                row.rule_id,
                row.kind,
                row.action,
                row.customer_id,
                row.merchant_id,
                row.day,
                row.account_no,
                row.tranpostdt.replace(tzinfo=UTC),
                row.tranid,
                row.amount,
                None if row.evidence_value is None else round(row.evidence_value, 6),
                row.evidence_limit,
                row.hit_id,
                row.merchant_category,
                row.source_offset,
            )
        )
        # Columns the oracle does not state, checked against the model's own functions.
        assert row.rule_parameters == parameters_text(rules_by_id[row.rule_id].definition)
        assert row.reason == reason(rules_by_id[row.rule_id].kind, row.amount, row.evidence_value, row.evidence_limit)
    return found


rules_by_id: dict[str, Rule] = {}


def register(*rules: Rule) -> list[Rule]:
    rules_by_id.update({str(r.rule_id): r for r in rules})
    return list(rules)


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


# --- worked examples ---------------------------------------------------------------------------------


def test_amount_over_fires_strictly_above_the_limit(spark: SparkSession) -> None:
    (cap,) = register(rule(AmountOver(customer_id="C1", amount_limit=100.0)))
    batch = [txn("A1", at(5), "T1", 100.0), txn("A2", at(5), "T2", 100.01), txn("A3", at(5), "T3", 500.0)]
    hits = hits_of(judge(spark, batch, [cap]))
    # A3 is C2's account; A1's 100.00 is not over 100.
    assert {(h.account_no, h.tranid, h.action, h.customer_id) for h in hits} == {("A2", "T2", "confirm_customer", "C1")}


def test_an_account_rule_applies_to_that_account_only(spark: SparkSession) -> None:
    (cap,) = register(rule(AmountOver(customer_id="C1", account_no="A2", amount_limit=10.0), 2))
    batch = [txn("A1", at(5), "T1", 50.0), txn("A2", at(5), "T2", 50.0)]
    assert {h.account_no for h in hits_of(judge(spark, batch, [cap]))} == {"A2"}


def test_a_rule_watches_the_transactions_made_once_it_exists(spark: SparkSession) -> None:
    later = Rule(uuid.UUID(int=11), AmountOver(customer_id="C1", amount_limit=1.0), at(5, 12))
    register(later)
    batch = [txn("A1", at(5, 11, 59), "T1", 5.0), txn("A1", at(5, 12), "T2", 5.0)]
    assert {h.tranid for h in hits_of(judge(spark, batch, [later]))} == {"T2"}


def test_hit_rows_carry_the_evidence_the_lineage_and_a_stable_id(spark: SparkSession) -> None:
    (staff,) = register(rule(MerchantAmountOver(merchant_id="M1", amount_limit=50.0), 3))
    batch = [txn("A9", at(7, 8), "T1", 75.5, offset=41)]
    actual = judge(spark, batch, [staff], holders={}).select(
        "customer_id", "merchant_id", "day", "action", "evidence_value", "evidence_limit", "hit_id", "source_offset"
    )
    expected = spark.createDataFrame(
        [(None, "M1", date(2026, 1, 7), "confirm_staff", 75.5, 50.0, hit_id(staff.rule_id, "A9", at(7, 8), "T1"), 41)],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_new_merchant_looks_back_lookback_days_in_event_time(spark: SparkSession) -> None:
    (new,) = register(rule(NewMerchant(customer_id="C1", lookback_days=30), 4))
    stored = [txn("A1", at(1), "S1", 5.0, "M1"), txn("A1", at(2), "S2", 5.0, "M2")]
    batch = [
        txn("A1", at(20), "T1", 9.0, "M1"),  # M1 seen on the 1st: in the lookback
        txn("A1", at(20), "T2", 9.0, "M3"),  # never seen: new
        txn("A1", at(20, 13), "T3", 9.0, "M3"),  # T2 is earlier in event time: not new
        txn("A1", at(20), "T4", 9.0, None),  # no merchant: never new
    ]
    hits = hits_of(judge(spark, batch, [new], stored))
    # T2 follows S1, S2 and T1 (same time, lower tranid): three earlier transactions, none at M3.
    assert {(h.tranid, h.evidence_value, h.evidence_limit) for h in hits} == {("T2", 3.0, 30.0)}


def test_new_merchant_forgets_what_is_older_than_the_lookback(spark: SparkSession) -> None:
    (new,) = register(rule(NewMerchant(customer_id="C1", lookback_days=1), 5))
    stored = [txn("A1", at(1, 12), "S1", 5.0, "M1"), txn("A2", at(1, 12), "S2", 5.0, "M1")]
    batch = [
        txn("A1", at(2, 12) + timedelta(milliseconds=1), "T1", 5.0, "M1"),  # S1 is a day and 1 ms old: forgotten
        txn("A2", at(2, 12), "T2", 5.0, "M1"),  # S2 is exactly a day old: still in the lookback
    ]
    assert {h.tranid for h in hits_of(judge(spark, batch, [new], stored))} == {"T1"}


def test_monthly_cap_fires_on_the_crossing_transaction_and_every_one_after_it(spark: SparkSession) -> None:
    (cap,) = register(rule(MerchantMonthlyCap(customer_id="C1", amount_limit=20.0, capped_merchant_category="5818"), 6))
    stored = [
        txn("A1", at(2), "S1", 9.99, "M2"),
        txn("A1", datetime(2025, 12, 31, 23, 59, tzinfo=UTC), "S0", 50.0, "M2"),
    ]
    batch = [
        txn("A1", at(3), "T1", 10.01, "M3"),  # 20.00: not over
        txn("A1", at(4), "T2", -5.0, "M2"),  # a refund: neither counts nor fires
        txn("A1", at(5), "T3", 0.01, "M2"),  # 20.01: over
        txn("A1", at(6), "T4", 3.0, "M1"),  # another category
        txn("A1", at(7), "T5", 1.0, "M3"),  # 21.01
        txn("A1", datetime(2026, 2, 1, tzinfo=UTC), "T6", 1.0, "M2"),  # a new UTC month
    ]
    hits = hits_of(judge(spark, batch, [cap], stored))
    assert {(h.tranid, h.evidence_value) for h in hits} == {("T3", 20.01), ("T5", 21.01)}


def test_monthly_spend_is_summed_exactly(spark: SparkSession) -> None:
    (cap,) = register(rule(MerchantMonthlyCap(customer_id="C1", amount_limit=0.3, capped_merchant_id="M2"), 10))
    # As doubles, 0.1 + 0.2 is 0.30000000000000004: over a cap of 0.30.
    batch = [txn("A1", at(3), "T1", 0.1, "M2"), txn("A1", at(4), "T2", 0.2, "M2"), txn("A1", at(5), "T3", 0.01, "M2")]
    assert {(h.tranid, h.evidence_value) for h in hits_of(judge(spark, batch, [cap]))} == {("T3", 0.31)}


def test_notify_every_transaction_notifies_each_one(spark: SparkSession) -> None:
    (notify,) = register(rule(NotifyEveryTransaction(customer_id="C2"), 7))
    batch = [txn("A3", at(5), "T1", 1.0), txn("A3", at(5), "T2", -1.0, None), txn("A1", at(5), "T3", 1.0)]
    assert {(h.tranid, h.action) for h in hits_of(judge(spark, batch, [notify]))} == {
        ("T1", "notify_customer"),
        ("T2", "notify_customer"),
    }


def test_daily_count_fires_once_on_the_transaction_that_passes_the_count(spark: SparkSession) -> None:
    (busy,) = register(rule(MerchantDailyCount(merchant_id="M1", amount_above=20.0, count_limit=2), 8))
    stored = [txn("A1", at(9, 8), "S1", 25.0), txn("A2", at(9, 9), "S2", 20.0)]
    batch = [txn("A3", at(9, 10), "T1", 30.0), txn("A1", at(9, 7), "T2", 21.0), txn("A2", at(10, 1), "T3", 99.0)]
    hits = hits_of(judge(spark, batch, [busy], stored))
    # Over 20 on the 9th: T2 (07:00), S1 (08:00), T1 (10:00): the third passes 2. The 10th has one.
    identity = daily_hit_id(busy.rule_id, "M1", date(2026, 1, 9))
    # A merchant's notice: filed under no customer, with the crossing transaction's own lineage.
    assert {(h.tranid, h.evidence_value, h.evidence_limit, h.hit_id, h.customer_id) for h in hits} == {
        ("T1", 3.0, 2.0, identity, None)
    }
    assert not hits_of(judge(spark, batch, [busy], stored, done=[identity]))


def test_daily_count_orders_a_tie_of_time_and_tranid_by_account(spark: SparkSession) -> None:
    (busy,) = register(rule(MerchantDailyCount(merchant_id="M1", amount_above=20.0, count_limit=0), 12))
    # tranid is unique per account only: two accounts' transactions can share it, and their time.
    batch = [txn("A3", at(9, 10), "T1", 30.0, offset=1), txn("A1", at(9, 10), "T1", 30.0, offset=2)]
    for arrival in (batch, batch[::-1]):
        assert {(h.account_no, h.source_offset) for h in hits_of(judge(spark, arrival, [busy]))} == {("A1", 2)}


def test_daily_count_names_a_crossing_transaction_made_before_the_rule(spark: SparkSession) -> None:
    created = Rule(uuid.UUID(int=13), MerchantDailyCount(merchant_id="M1", amount_above=20.0, count_limit=0), at(9, 10))
    register(created)
    batch = [txn("A1", at(9, 9), "T1", 30.0, offset=4), txn("A2", at(9, 11), "T2", 30.0, offset=5)]
    # T2, made once the rule existed, triggers it; T1, earlier, is the first over 20: it takes the count over.
    hits = hits_of(judge(spark, batch, [created]))
    assert {(h.tranid, h.merchant_category, h.source_offset) for h in hits} == {("T1", "5814", 4)}


def test_a_record_delivered_twice_in_a_batch_is_judged_once_as_its_first_record(spark: SparkSession) -> None:
    (cap,) = register(rule(AmountOver(customer_id="C1", amount_limit=1.0), 9))
    batch = [txn("A1", at(5), "T1", 5.0, offset=8), txn("A1", at(5), "T1", 5.0, offset=3)]
    actual = judge(spark, batch, [cap]).select("tranid", "source_offset")
    assert_df_equality(actual, spark.createDataFrame([("T1", 3)], actual.schema), ignore_nullable=True)


# --- the property ------------------------------------------------------------------------------------

ACCOUNTS = ["A1", "A2", "A3", "A4"]  # A4 has no known holder
MERCHANTS = ["M1", "M2", "M3", None]
# On coarse grids, so that times tie: half-days over six weeks (lookbacks of a day and of 30 days end on
# them), and half-hours around a UTC month's end (and so a day's).
moments = st.one_of(
    st.builds(lambda halves: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=12 * halves), st.integers(0, 84)),
    st.builds(lambda halves: datetime(2026, 1, 31, 22, tzinfo=UTC) + timedelta(minutes=30 * halves), st.integers(0, 8)),
)
amounts = st.sampled_from([-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0])
transactions = st.builds(
    lambda account, moment, tranid, amount, merchant: txn(account, moment, tranid, amount, merchant),
    st.sampled_from(ACCOUNTS),
    moments,
    st.sampled_from(["T1", "T2", "T3", "T4", "T5", "T6"]),
    amounts,
    st.sampled_from(MERCHANTS),
)
limits = st.sampled_from([5.0, 10.0, 20.0])
issuer = st.fixed_dictionaries({"customer_id": st.sampled_from(["C1", "C2"])}) | st.fixed_dictionaries(
    {"customer_id": st.just("C1"), "account_no": st.sampled_from(["A1", "A2"])}
)
definitions = st.one_of(
    st.builds(lambda owner, limit: AmountOver(**owner, amount_limit=limit), issuer, limits),
    st.builds(lambda owner, days: NewMerchant(**owner, lookback_days=days), issuer, st.sampled_from([1, 30])),
    st.builds(
        lambda owner, limit, target: MerchantMonthlyCap(**owner, amount_limit=limit, **target),
        issuer,
        limits,
        st.sampled_from([{"capped_merchant_id": "M2"}, {"capped_merchant_category": "5818"}]),
    ),
    st.builds(lambda owner: NotifyEveryTransaction(**owner), issuer),
    st.builds(
        lambda m, limit: MerchantAmountOver(merchant_id=m, amount_limit=limit), st.sampled_from(["M1", "M2"]), limits
    ),
    st.builds(
        lambda m, above, count: MerchantDailyCount(merchant_id=m, amount_above=above, count_limit=count),
        st.sampled_from(["M1", "M2"]),
        st.sampled_from([0.0, 10.0]),
        st.integers(0, 3),
    ),
)
# Distinct transactions (a key always has the same content: a resend repeats a transaction), then batches
# of records drawn from them: a record may repeat one of an earlier batch (a replay, a producer's resend)
# or of its own batch.
pools = st.lists(transactions, min_size=1, max_size=8, unique_by=lambda t: t.key)


# A deeper search on demand: FRAUDSHOP_PROPERTY_EXAMPLES=200 fraudshop test tests/unit/test_rule_engine.py
@settings(
    max_examples=int(os.environ.get("FRAUDSHOP_PROPERTY_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pools, st.data(), st.lists(definitions, min_size=1, max_size=4))
def test_micro_batches_find_the_hits_of_the_oracle(
    spark: SparkSession, pool: list[Txn], data: st.DataObject, definitions: list[RuleDefinition]
) -> None:
    picks = st.lists(st.sampled_from(pool), min_size=1, max_size=6)
    batches = data.draw(st.lists(picks, min_size=1, max_size=3))
    # Some rules exist from the start, others from a moment among the transactions'.
    created = data.draw(
        st.lists(st.one_of(st.just(CREATED), moments), min_size=len(definitions), max_size=len(definitions))
    )
    rules = register(
        *[Rule(uuid.UUID(int=100 + i), d, c) for i, (d, c) in enumerate(zip(definitions, created, strict=True))]
    )
    stored: dict[tuple[str, datetime, str], Txn] = {}
    done: set[str] = set()
    offset = 0
    for records in batches:
        batch = []
        for record in records:  # Kafka positions in arrival order
            batch.append(replace(record, position=(0, offset)))
            offset += 1
        expected = judge_batch(batch, stored, rules, HOLDERS, done)
        found = hits_of(judge(spark, batch, rules, list(stored.values()), sorted(done)))
        assert found == expected
        # A replayed batch (its transactions already written, its hits not yet done) finds the same hits.
        written = {**stored, **{record.key: record for record in batch}}
        if len(records) % 2 == 0:
            assert hits_of(judge(spark, batch, rules, list(written.values()), sorted(done))) == found
        stored = written
        done |= {hit.hit_id for hit in found}


def test_the_history_starts_at_the_month_or_the_longest_lookback_whichever_is_earlier() -> None:
    at = datetime(2026, 3, 20, 15, 30, tzinfo=UTC)
    assert history_since(at, 5) == datetime(2026, 3, 1, tzinfo=UTC)  # the monthly caps need the month
    assert history_since(at, 30) == datetime(2026, 2, 18, 15, 30, tzinfo=UTC)
    assert history_since(datetime(2026, 3, 1, tzinfo=UTC), 0) == datetime(2026, 3, 1, tzinfo=UTC)
