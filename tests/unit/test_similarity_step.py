"""The similarity step inside the job's micro-batch, over an in-memory store: every transaction is scored
and its score stored; a card-testing burst against seeded cases becomes similar_to_fraud hits, announced
before they are stored, once each (a replayed batch announces nothing again); a case recorded between
batches counts from the next batch; a merchant's fraud share counts each of its days once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.lab.patterns import FraudPattern, PatternInstance, pattern_instances, seeded_pattern_cases
from fraudshop.lab.workload import record_time
from fraudshop.model.cases import (
    SIMILARITY_ACTION,
    SIMILARITY_KIND,
    SIMILARITY_RULE_ID,
    CaseLabel,
    CaseSource,
    FraudCase,
)
from fraudshop.model.features import VECTOR_DIMENSIONS
from fraudshop.model.records import Transaction
from fraudshop.model.risk import FRAUD_SHARE_FEATURES, RISK_FEATURES
from fraudshop.model.rules import hit_id
from fraudshop.pipeline.metrics import BatchMetrics
from fraudshop.pipeline.micro_batch import BATCH_TIMESTAMP, MicroBatchProcessor
from tests.unit.kafka_rows import KAFKA_SCHEMA
from tests.unit.memory_store import InMemoryNotifications, InMemoryStore, detection_processor

RECEIVED_AT = datetime(2026, 3, 1, tzinfo=UTC)
THRESHOLD = 0.8


def kafka_batch(spark: SparkSession, records: Sequence[Transaction], first_offset: int) -> DataFrame:
    rows = [
        (None, json.dumps(record).encode(), "transaction", 0, offset, RECEIVED_AT)
        for offset, record in enumerate(records, first_offset)
    ]
    return spark.createDataFrame(rows, KAFKA_SCHEMA).withColumn(BATCH_TIMESTAMP, F.lit(RECEIVED_AT))


def burst(seed: int) -> PatternInstance:
    (instance,) = pattern_instances(FraudPattern.CARD_TESTING, 1, seed, RECEIVED_AT - timedelta(hours=1))
    return instance


def pipeline(spark: SparkSession) -> tuple[InMemoryStore, InMemoryNotifications, MicroBatchProcessor]:
    store = InMemoryStore(spark)
    notifications = InMemoryNotifications(store)
    return store, notifications, detection_processor(store, notifications=notifications, similarity_threshold=THRESHOLD)


def seed_cases(store: InMemoryStore) -> None:
    store.cases.extend(seeded_pattern_cases(25, 0, RECEIVED_AT))


def test_a_card_testing_burst_is_caught_by_similarity_and_announced_once(spark: SparkSession) -> None:
    store, notifications, process = pipeline(spark)
    seed_cases(store)
    testing = burst(seed=7)
    store.holders[testing.account_no] = "CUST-TESTED"
    process(kafka_batch(spark, testing.history, 0), 0)  # the ordinary month first
    # Ordinary purchases are mostly unlike the known frauds (the similarity is a signal, not a verdict).
    false_alarms = len(notifications.messages)
    assert false_alarms <= max(1, len(testing.history) // 10)
    process(kafka_batch(spark, testing.frauds, 100), 1)

    everything = [*testing.history, *testing.frauds]
    assert len(store.scores) == len(everything)  # every transaction scored, its score stored
    assert all(len(row["vector"]) == VECTOR_DIMENSIONS and 0 <= row["risk_score"] <= 1 for row in store.scores.values())
    assert all(len(row["nearest_cases"]) == len(row["nearest_cosines"]) == 5 for row in store.scores.values())

    hits = {message["tranid"]: message for message in notifications.messages[false_alarms:]}
    fraud_ids = {fraud["tranid"] for fraud in testing.frauds}
    assert set(hits) <= fraud_ids and len(hits) >= len(fraud_ids) // 2  # most of the burst, nothing else
    for fraud in testing.frauds:
        if fraud["tranid"] not in hits:
            continue
        hit = hits[fraud["tranid"]]
        assert (hit["kind"], hit["action"], hit["rule_id"]) == (
            SIMILARITY_KIND,
            SIMILARITY_ACTION,
            str(SIMILARITY_RULE_ID),
        )
        assert hit["evidence_value"] >= THRESHOLD and hit["evidence_limit"] == THRESHOLD
        assert hit["reason"].startswith("similar to known fraud: score")
        assert json.loads(hit["rule_parameters"]) == {"threshold": THRESHOLD, "nearest_cases": 5}
        posted = datetime.fromisoformat(fraud["tranpostdt"].replace("Z", "+00:00"))
        assert hit["hit_id"] == hit_id(SIMILARITY_RULE_ID, testing.account_no, posted, fraud["tranid"])
        assert hit["customer_id"] == "CUST-TESTED" and hit["merchant_id"] == fraud["merchant_id"]
    assert len(store.hits) == len(store.hits_by_merchant_day) == len(hits) + false_alarms
    assert notifications.stored_hits_when_published[-1] == false_alarms  # announced before stored

    sent = len(notifications.messages)
    process(kafka_batch(spark, testing.frauds, 100), 1)  # Spark's replay after a crash
    assert len(notifications.messages) == sent


def test_a_case_recorded_between_batches_counts_from_the_next_batch(spark: SparkSession) -> None:
    store, notifications, process = pipeline(spark)
    first, second = burst(seed=11), burst(seed=12)
    process(kafka_batch(spark, [*first.history, *first.frauds], 0), 0)
    assert not notifications.messages  # no case yet: every score is 0
    assert {row["risk_score"] for row in store.scores.values()} == {0.0}
    assert all(row["nearest_cases"] == [] for row in store.scores.values())
    seed_cases(store)
    process(kafka_batch(spark, [*second.history, *second.frauds], 1_000), 1)
    hits = {message["tranid"] for message in notifications.messages}
    frauds = {fraud["tranid"] for fraud in second.frauds}
    assert len(hits & frauds) >= len(frauds) // 2
    assert len(hits - frauds) <= max(1, len(second.history) // 10)


@pytest.mark.parametrize("threshold", [1.0])
def test_nothing_over_the_threshold_runs_no_hit_job_and_stores_every_score(
    spark: SparkSession, threshold: float
) -> None:
    store = InMemoryStore(spark)
    notifications = InMemoryNotifications(store)
    process = detection_processor(store, notifications=notifications, similarity_threshold=threshold)
    seed_cases(store)
    testing = burst(seed=3)
    metrics: list[BatchMetrics] = []
    process.on_batch_done = metrics.append
    process(kafka_batch(spark, testing.history, 0), 0)
    assert not notifications.messages and len(store.scores) == len(testing.history)
    assert metrics[-1].cases == len(store.cases) and metrics[-1].similarity_hits == 0
    assert "similarity" in metrics[-1].step_ms


def purchase(account_no: str, at: datetime, tranid: str, merchant_id: str) -> Transaction:
    return {
        "account_no": account_no,
        "tranpostdt": record_time(at),
        "tranid": tranid,
        "amount": 25.0,
        "merchant_id": merchant_id,
        "cardnum": "4000000000000002",
        "transtat": "POSTED",
        "trantype": "DEBIT",
        "tranamt": 25.0,
    }


def test_a_merchants_fraud_share_counts_its_days_once_and_only_for_merchants_with_a_confirmed_fraud(
    spark: SparkSession,
) -> None:
    store, _, process = pipeline(spark)
    day = datetime(2026, 2, 1, 10, tzinfo=UTC)
    shop = [purchase(f"ACC-{n}", day + timedelta(minutes=n), f"shop-{n}", "M-SHOP") for n in range(10)]
    other = [purchase(f"ACC-{n}", day + timedelta(minutes=n), f"other-{n}", "M-OTHER") for n in range(5)]
    process(kafka_batch(spark, [*shop, *other], 0), 0)
    # The first purchase at the shop is confirmed a fraud: its label came back after the 7-day delay.
    store.cases.append(
        FraudCase(
            case_id="confirmed-shop-0",
            vector=tuple([1.0] + [0.0] * (VECTOR_DIMENSIONS - 1)),
            label=CaseLabel.FRAUD,
            source=CaseSource.FEEDBACK,
            pattern=None,
            recorded_at=day + timedelta(days=7, hours=14),
            recorded_by="test",
            account_no="ACC-0",
            tranpostdt=day,
            tranid="shop-0",
            merchant_id="M-SHOP",
            amount=25.0,
        )
    )
    eight_days_later = day + timedelta(days=8)
    later = [
        purchase("ACC-20", eight_days_later, "later-shop", "M-SHOP"),
        purchase("ACC-21", eight_days_later, "later-other", "M-OTHER"),
    ]
    process(kafka_batch(spark, later, 100), 1)

    def shares(tranid: str) -> list[float]:
        (row,) = (row for key, row in store.scores.items() if key[2] == tranid)
        return [row["risk_features"][RISK_FEATURES.index(name)] for name in FRAUD_SHARE_FEATURES]

    # The day eight days before is in every window (it ends the delay before the purchase's day): 1 fraud in 10.
    assert shares("later-shop") == pytest.approx([0.1, 0.1, 0.1])
    assert shares("later-other") == [0.0, 0.0, 0.0]
    # Only the merchant with a confirmed fraud is counted, each day of its windows once (0 where it sold nothing).
    assert {merchant for merchant, _ in store.totals} == {"M-SHOP"}
    assert len(store.totals) == 30 and store.totals[("M-SHOP", day.date())]["transactions"] == 10

    # A transaction stored for that day only now (later than the delay) is not counted: the day was counted.
    store.merchant_days[("M-SHOP", day.date(), day, "ACC-99", "late")] = {
        "merchant_id": "M-SHOP", "day": day.date(), "tranpostdt": day, "account_no": "ACC-99", "tranid": "late",
        "amount": 1.0,
    }  # fmt: skip
    process(kafka_batch(spark, [purchase("ACC-22", eight_days_later, "again-shop", "M-SHOP")], 200), 2)
    assert shares("again-shop") == pytest.approx([0.1, 0.1, 0.1])
