"""The risk model: its features (model/risk.py), its training set (transforms/training.py, chispa), and
its training with Spark MLlib (pipeline/training.py), whose fitted model fraudshop's numpy probability
reproduces to 1e-9."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fraudshop.model.features import CONTEXT_COLUMNS, TRANSACTION_INPUTS
from fraudshop.model.risk import (
    RISK_FEATURE_SET,
    RISK_FEATURES,
    ConfirmedFrauds,
    MerchantTotals,
    fraud_share_days,
    merchant_fraud_shares,
    risk_features,
    share_days_to_read,
)
from fraudshop.pipeline.training import NotEnoughLabels, train_risk_model
from fraudshop.transforms.training import labelled_transactions, training_window

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
MICROS = 1_000_000


def micros(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_the_training_window_ends_the_feedback_delay_before_the_as_of_time() -> None:
    assert training_window(AS_OF, 7, 60) == (AS_OF - timedelta(days=67), AS_OF - timedelta(days=7))


def test_confirmed_frauds_count_once_known_and_for_a_month_after_they_happened() -> None:
    at = datetime(2026, 3, 31, 12, tzinfo=UTC)
    frauds = ConfirmedFrauds(
        account_nos=np.array(["A"] * 4, dtype=object),
        merchant_ids=np.array(["M1", "M1", "M1", "M2"], dtype=object),
        happened_micros=np.array(
            [
                micros(at - timedelta(days=10)),
                micros(at - timedelta(days=31)),
                micros(at - timedelta(days=2)),
                micros(at - timedelta(days=1)),
            ]
        ),
        known_micros=np.array(
            [
                micros(at - timedelta(days=3)),
                micros(at - timedelta(days=24)),
                micros(at + timedelta(hours=1)),
                micros(at),
            ]
        ),
    )
    transactions = pd.DataFrame(
        {
            "account_no": ["A", "B", "A"],
            "tranpostdt": [at, at, at],
            "tranid": ["1", "2", "3"],
            "amount": [10.0, 10.0, 10.0],
            "merchant_id": ["M1", "M1", None],
            "merchant_category": [None] * 3,
            "channel": [None] * 3,
        }
    )[list(TRANSACTION_INPUTS)]
    context = pd.DataFrame(np.nan, index=transactions.index, columns=list(CONTEXT_COLUMNS))
    features = risk_features(transactions, context, np.zeros(3), frauds, MerchantTotals.none(), 7)
    at_merchant = features[:, RISK_FEATURES.index("log_merchant_frauds_last_month")]
    on_account = features[:, RISK_FEATURES.index("log_account_frauds_last_month")]
    # M1: the first only (the second happened 31 days before, the third is known an hour after).
    assert list(np.expm1(at_merchant).round(6)) == [1.0, 1.0, 0.0]
    # Account A: the first and M2's (known at the very time: counts).
    assert list(np.expm1(on_account).round(6)) == [2.0, 0.0, 2.0]


def day_number(at: datetime) -> int:
    return micros(at) // (86_400 * MICROS)


def test_a_merchants_fraud_share_is_of_its_days_ending_the_feedback_delay_before_and_known_frauds_only() -> None:
    at = datetime(2026, 3, 31, 12, tzinfo=UTC)
    d = day_number(at)

    def fraud(days_before: int, known_after: timedelta) -> tuple[int, int]:
        happened = at.replace(hour=9) - timedelta(days=days_before)
        return micros(happened), micros(happened + known_after)

    happened, known = zip(
        fraud(8, timedelta(days=7, hours=15)),  # the day before the delay's: in every window
        fraud(10, timedelta(days=7)),  # in the week's and the month's
        fraud(20, timedelta(days=30)),  # its label not back yet: never
        fraud(7, timedelta(hours=1)),  # inside the delay: in no window, though known
        fraud(8, timedelta(days=1)),  # at another merchant without totals: no share rather than a made-up one
        strict=True,
    )
    frauds = ConfirmedFrauds(
        account_nos=np.array(["A"] * 5, dtype=object),
        merchant_ids=np.array(["M1", "M1", "M1", "M1", "M3"], dtype=object),
        happened_micros=np.array(happened),
        known_micros=np.array(known),
    )
    totals = MerchantTotals(
        merchant_ids=np.array(["M1", "M1", "M1", "M1", "M1", "M1", "M2"], dtype=object),
        days=np.array([d - 7, d - 8, d - 10, d - 20, d - 37, d - 38, d - 8]),  # the month: d - 37 to d - 8
        transactions=np.array([1000, 4, 6, 10, 5, 1000, 50]),
    )
    merchants = np.array(["M1", "M2", None, "M3"], dtype=object)
    shares = merchant_fraud_shares(merchants, np.full(4, micros(at)), frauds, totals, 7)
    np.testing.assert_allclose(shares, np.array([[1 / 4, 2 / 10, 2 / 25], [0, 0, 0], [0, 0, 0], [0, 0, 0]]))
    assert fraud_share_days(d, 7) == (d - 37, d - 8)


def test_a_merchants_totals_are_read_only_when_a_confirmed_fraud_falls_in_the_shares_days() -> None:
    d = 20_000
    assert share_days_to_read(d, [d - 37], 7) == (d - 37, d - 8)  # the window's first day
    assert share_days_to_read(d, [d - 50, d - 8, d], 7) == (d - 37, d - 8)  # its last
    assert share_days_to_read(d, [d - 38, d - 7], 7) is None  # just outside either edge
    assert share_days_to_read(d, [], 7) is None
    assert share_days_to_read(d, [d - 20], 7, newest=d - 21) is None  # the batch's newest day cuts it
    assert share_days_to_read(d, [d - 20], 7, newest=d - 10) == (d - 37, d - 10)


def test_features_without_history_are_neutral_and_never_nan() -> None:
    at = datetime(2026, 3, 28, 3, tzinfo=UTC)  # a Saturday night
    transactions = pd.DataFrame([("A", at, "1", 99.0, None, None, None)], columns=list(TRANSACTION_INPUTS))
    context = pd.DataFrame(np.nan, index=transactions.index, columns=list(CONTEXT_COLUMNS))
    (row,) = risk_features(transactions, context, np.array([0.25]), ConfirmedFrauds.none(), MerchantTotals.none(), 7)
    named = dict(zip(RISK_FEATURES, row.tolist(), strict=True))
    assert not np.isnan(row).any()
    assert named["similarity"] == 0.25 and named["log_amount"] == pytest.approx(np.log1p(99.0))
    assert named["amount"] == 99.0 and named["merchant_fraud_share_last_month"] == 0.0
    assert named["amount_vs_usual"] == 0.0 and named["log_transactions_last_month"] == 0.0
    assert named["profile_change_window"] == 0.0 and named["merchant_is_new"] == 0.5
    assert named["night"] == 1.0 and named["weekend"] == 1.0


TRANSACTIONS_SCHEMA = (
    "account_no string, tranpostdt timestamp, tranid string, risk_features array<float>, risk_feature_set string"
)
CASES_SCHEMA = (
    "case_id string, label string, source string, account_no string, tranpostdt timestamp, tranid string, "
    "recorded_at timestamp"
)


def test_the_training_set_is_the_windows_scored_transactions_labelled_by_the_frauds_known_by_then(
    spark: SparkSession,
) -> None:
    start, end = training_window(AS_OF, 7, 30)
    inside = end - timedelta(days=1)
    features = [0.5] * len(RISK_FEATURES)
    transactions = spark.createDataFrame(
        [
            ("A", inside, "fraud", features, RISK_FEATURE_SET),
            ("A", inside, "genuine", features, RISK_FEATURE_SET),
            ("A", inside, "cleared", features, RISK_FEATURE_SET),
            ("A", inside, "known too late", features, RISK_FEATURE_SET),
            ("A", inside, "seeded look-alike", features, RISK_FEATURE_SET),
            ("B", start, "first day", features, RISK_FEATURE_SET),  # the window's start: inside
            ("B", end, "labels not back", features, RISK_FEATURE_SET),  # the window's end: outside
            ("B", start - timedelta(seconds=1), "too old", features, RISK_FEATURE_SET),
            ("B", inside, "older definitions", features, "risk-v0"),
            ("B", inside, "not scored", None, None),
        ],
        TRANSACTIONS_SCHEMA,
    )
    cases = spark.createDataFrame(
        [
            ("1", "fraud", "feedback", "A", inside, "fraud", AS_OF),
            ("2", "genuine", "analyst", "A", inside, "cleared", AS_OF - timedelta(days=1)),
            ("3", "fraud", "analyst", "A", inside, "known too late", AS_OF + timedelta(seconds=1)),
            ("4", "fraud", "seeded", "A", inside, "seeded look-alike", AS_OF - timedelta(days=1)),
            ("5", "fraud", "analyst", "B", start, "first day", AS_OF - timedelta(days=2)),
            ("6", "fraud", "analyst", "B", end, "labels not back", AS_OF - timedelta(days=2)),
        ],
        CASES_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            ("A", inside, "fraud", features, 1.0),
            ("A", inside, "genuine", features, 0.0),
            ("A", inside, "cleared", features, 0.0),
            ("A", inside, "known too late", features, 0.0),
            ("A", inside, "seeded look-alike", features, 0.0),
            ("B", start, "first day", features, 1.0),
        ],
        "account_no string, tranpostdt timestamp, tranid string, risk_features array<float>, label double",
    )
    actual = labelled_transactions(transactions, cases, AS_OF, start, end)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def synthetic_training_set(spark: SparkSession, rows: int = 3_000, seed: int = 5) -> pd.DataFrame:
    """Features whose log-odds of fraud are linear in a few of them, as a logistic regression assumes."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, len(RISK_FEATURES))).astype(np.float32)
    logit = -3.0 + 1.5 * features[:, 0] + 1.0 * features[:, 1] - 0.8 * features[:, 5]
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(float)
    return pd.DataFrame(
        {
            "account_no": [f"A{n % 50}" for n in range(rows)],
            "tranpostdt": [AS_OF - timedelta(days=10, seconds=n) for n in range(rows)],
            "tranid": [str(n) for n in range(rows)],
            "risk_features": [row.tolist() for row in features],
            "label": labels,
        }
    )


LABELLED_SCHEMA = "account_no string, tranpostdt timestamp, tranid string, risk_features array<float>, label double"


def test_fraudshops_probability_is_mllibs_for_the_model_it_trained(spark: SparkSession) -> None:
    data = synthetic_training_set(spark)
    labelled = spark.createDataFrame(data, LABELLED_SCHEMA)
    model = train_risk_model(labelled, AS_OF, AS_OF, regularization=0.01, max_iterations=100)
    assert model.training_rows == len(data) and model.training_frauds == int(data["label"].sum())
    assert model.features == RISK_FEATURES and model.feature_set == RISK_FEATURE_SET
    assert 0.75 < model.training_auc < 1.0
    assert model.coefficients[0] > 1.0 and model.coefficients[5] < -0.4  # it found the signal
    # MLlib's own prediction of the same fit, row by row.
    vectors = labelled.select(array_to_vector(F.col("risk_features")).alias("features"), "label", "tranid")
    fitted = LogisticRegression(regParam=0.01, elasticNetParam=0.0, standardization=True, maxIter=100).fit(vectors)
    mllib = {
        row.tranid: row.p
        for row in fitted.transform(vectors)
        .select("tranid", vector_to_array(F.col("probability"))[1].alias("p"))
        .collect()
    }
    ours = model.probabilities(np.array(data["risk_features"].tolist(), dtype=np.float32))
    assert np.allclose(ours, [mllib[tranid] for tranid in data["tranid"]], rtol=0, atol=1e-9)
    # Calibrated on its training data: the mean probability is about the fraud rate.
    assert ours.mean() == pytest.approx(data["label"].mean(), abs=0.01)


@pytest.mark.parametrize("label", [0.0, 1.0], ids=["no fraud", "nothing but fraud"])
def test_a_window_without_both_classes_is_refused(spark: SparkSession, label: float) -> None:
    data = synthetic_training_set(spark, rows=20).assign(label=label)
    with pytest.raises(NotEnoughLabels, match="needs both frauds and genuine"):
        train_risk_model(spark.createDataFrame(data, LABELLED_SCHEMA), AS_OF, AS_OF, 0.01, 100)
