"""The transaction vector in Spark (transforms/features.py) is the plain function's (model/features.py):
the same context and the same vector, to the bit, for the same transactions and events; and so are the
similarity score, the risk features and the fraud probability (model/cases.py, model/risk.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from fraudshop.model.cases import CaseLabel, CaseSource, FraudCase, KnownCases, scores_against
from fraudshop.model.features import (
    CHANGE_EVENT,
    CONTEXT_COLUMNS,
    EVENT_COLUMNS,
    TRANSACTION_EVENT,
    TRANSACTION_INPUTS,
    transaction_context,
    vectors_of,
)
from fraudshop.model.features import transaction_vectors as transaction_vectors_of_context
from fraudshop.model.risk import RISK_FEATURE_SET, RISK_FEATURES, MerchantTotals, RiskModel, risk_features
from fraudshop.transforms.features import VECTOR, VECTOR_SCHEMA, Scoring, scored_transactions, transaction_vectors
from tests.risk_models import a_risk_model

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TRANSACTION_SCHEMA = (
    "account_no string, tranpostdt timestamp, tranid string, amount double, merchant_id string, "
    "merchant_category string, channel string"
)
EVENT_SCHEMA = "account_no string, tranpostdt timestamp, tranid string, amount double, merchant_id string, event string"


def workload() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Twelve accounts' batch transactions, some at the same instant, and their history and changes."""
    batch: list[tuple[object, ...]] = []
    known: list[tuple[object, ...]] = []
    for number in range(12):
        account = f"ACC{number:02d}"
        for step in range(number % 4 + 1):
            merchant = None if step == 3 else f"M{(number + step) % 5}"
            batch.append(
                (account, AT + timedelta(seconds=step // 2), f"t{number}-{step}", 3.0 * step + number, merchant,
                 "5999" if merchant else None, ("pos", "online", "atm", None)[step])
            )  # fmt: skip
        for day in range(0, 40, 3):
            known.append(
                (account, AT - timedelta(days=day, minutes=number), f"h{number}-{day}", 10.0 + day, f"M{day % 7}",
                 TRANSACTION_EVENT)
            )  # fmt: skip
        if number % 3 == 0:
            known.append((account, AT - timedelta(hours=number), "", float("nan"), None, CHANGE_EVENT))
    return pd.DataFrame(batch, columns=list(TRANSACTION_INPUTS)), pd.DataFrame(known, columns=list(EVENT_COLUMNS))


def test_the_stream_and_the_plain_function_give_the_same_context_and_vector(spark: SparkSession) -> None:
    transactions, events = workload()
    in_spark = transaction_vectors(
        spark.createDataFrame(transactions, TRANSACTION_SCHEMA), spark.createDataFrame(events, EVENT_SCHEMA)
    )
    # Arrow hands a missing value (NaN in pandas) to Spark as null.
    context = transaction_context(transactions, events).astype(object)
    context = context.where(context.notna(), None)
    expected = pd.concat([transactions[["account_no", "tranpostdt", "tranid"]], context], axis=1).assign(
        **{VECTOR: [vector.tolist() for vector in vectors_of(transactions, events)]}
    )
    assert in_spark.rdd.getNumPartitions() > 1  # accounts spread over partitions, each computed apart
    assert_df_equality(
        in_spark,
        spark.createDataFrame(expected, VECTOR_SCHEMA),
        ignore_row_order=True,
        allow_nan_equality=True,
    )


def test_every_batch_transaction_gets_a_row_and_no_event_does(spark: SparkSession) -> None:
    transactions, events = workload()
    rows = transaction_vectors(
        spark.createDataFrame(transactions, TRANSACTION_SCHEMA), spark.createDataFrame(events, EVENT_SCHEMA)
    ).collect()
    assert sorted(row.tranid for row in rows) == sorted(transactions["tranid"])
    assert all(len(row[VECTOR]) == 30 for row in rows)
    assert {name for name in CONTEXT_COLUMNS} <= set(rows[0].asDict())


def test_an_empty_batch_gives_no_rows(spark: SparkSession) -> None:
    empty: DataFrame = spark.createDataFrame([], TRANSACTION_SCHEMA)
    assert transaction_vectors(empty, spark.createDataFrame([], EVENT_SCHEMA)).count() == 0


def _day_number(at: datetime) -> int:
    return (at.date() - date(1970, 1, 1)).days


def _a_model(features: int) -> RiskModel:
    return a_risk_model(AT, -4.2, np.random.default_rng(3).normal(size=features).tolist())


def _known_cases(transactions: pd.DataFrame, events: pd.DataFrame) -> KnownCases:
    """Cases near some of the batch's transactions, and confirmed frauds at its merchants and accounts
    (one known only after the batch: it must not count)."""
    vectors = vectors_of(transactions, events)
    cases = [
        FraudCase(
            case_id=f"case-{number}",
            vector=tuple(float(x) for x in vectors[number]),
            label=CaseLabel.FRAUD if number % 2 else CaseLabel.GENUINE,
            source=CaseSource.FEEDBACK,
            pattern=None,
            recorded_at=AT - timedelta(days=1) if number != 3 else AT + timedelta(days=1),
            recorded_by="test",
            account_no=f"ACC{number:02d}",
            tranpostdt=AT - timedelta(days=5),
            tranid=f"fraud-{number}",
            merchant_id=f"M{number % 5}",
            amount=10.0,
        )
        for number in range(0, len(transactions), 3)
    ]
    return KnownCases.of(cases)


@pytest.mark.parametrize("with_model", [True, False], ids=["a model", "no model yet"])
def test_the_stream_and_the_plain_functions_give_the_same_scores_risk_features_and_probability(
    spark: SparkSession, with_model: bool
) -> None:
    transactions, events = workload()
    known = _known_cases(transactions, events)
    assert len(known.confirmed) > 0
    model = _a_model(len(RISK_FEATURES)) if with_model else None
    cases = spark.sparkContext.broadcast(known)
    # Every merchant sold 10 a day, and the frauds (5 days before) are in the windows without a delay.
    days = np.arange(_day_number(AT) - 40, _day_number(AT) + 1)
    totals = MerchantTotals(
        np.array([f"M{n}" for n in range(5) for _ in days], dtype=object), np.tile(days, 5), np.full(5 * len(days), 10)
    )
    rows = scored_transactions(
        spark.createDataFrame(transactions, TRANSACTION_SCHEMA),
        spark.createDataFrame(events, EVENT_SCHEMA),
        Scoring(cases, 3, model, spark.sparkContext.broadcast(totals), 0),
    ).collect()
    by_tranid = {row.tranid: row for row in rows}
    context = transaction_context(transactions, events)
    vectors = transaction_vectors_of_context(transactions, context)
    scores = scores_against(vectors, known, 3)
    features = risk_features(transactions, context, scores.risk_scores, known.confirmed, totals, 0)
    assert features[:, RISK_FEATURES.index("log_merchant_frauds_last_month")].max() > 0  # the frauds count
    assert features[:, RISK_FEATURES.index("merchant_fraud_share_last_week")].max() > 0
    for index, tranid in enumerate(transactions["tranid"]):
        row = by_tranid[tranid]
        assert row.risk_score == scores.risk_scores[index]
        assert row.nearest_cases == scores.nearest_case_ids[index]
        assert np.array_equal(np.array(row.risk_features, dtype=np.float32), features[index])
        assert row.risk_feature_set == RISK_FEATURE_SET
        if model is None:
            assert row.fraud_probability is None and row.model_version is None
        else:
            # To the bit, and recomputed from the stored (float32) features alone.
            assert row.fraud_probability == model.probabilities(features[index : index + 1])[0]
            stored = np.array([row.risk_features], dtype=np.float32)
            assert row.fraud_probability == model.probabilities(stored)[0]
            assert row.model_version == model.version
