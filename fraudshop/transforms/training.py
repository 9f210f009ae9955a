"""The risk model's training set: the scored transactions of a period, each labelled by the confirmed
fraud cases known at the model's as-of time (:mod:`fraudshop.model.risk`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraudshop.model.cases import CaseLabel, CaseSource
from fraudshop.model.risk import RISK_FEATURE_SET
from fraudshop.model.tables import TRANSACTION_KEY

#: The training set's columns beside the transaction's key: its risk features and its label (1.0 fraud).
FEATURES, LABEL = "risk_features", "label"


def training_window(as_of: datetime, feedback_delay_days: int, training_days: int) -> tuple[datetime, datetime]:
    """The transactions a model as of ``as_of`` learns from: posted in [start, end), ending the feedback
    delay before ``as_of`` (younger ones' labels are not back yet), ``training_days`` long."""
    end = as_of - timedelta(days=feedback_delay_days)
    return end - timedelta(days=training_days), end


def labelled_transactions(
    transactions: DataFrame, cases: DataFrame, as_of: datetime, start: datetime, end: datetime
) -> DataFrame:
    """TRANSACTION_KEY, :data:`FEATURES` and :data:`LABEL` of each of ``transactions`` (``transaction``
    rows) posted in [``start``, ``end``) and scored with the current feature definitions; labelled 1.0
    when ``cases`` (``fraud_case`` rows) hold a fraud case of it recorded by ``as_of`` (confirmed by an
    analyst or by the labels' feedback; never a seeded pattern), else 0.0."""
    scored = transactions.where(
        (F.col("risk_feature_set") == F.lit(RISK_FEATURE_SET))
        & F.col(FEATURES).isNotNull()
        & (F.col("tranpostdt") >= F.lit(start))
        & (F.col("tranpostdt") < F.lit(end))
    ).select(*TRANSACTION_KEY, FEATURES)
    # Filtered before the join: only the cases that can label a transaction of the window.
    frauds = (
        cases.where(
            (F.col("label") == F.lit(CaseLabel.FRAUD.value))
            & (F.col("source") != F.lit(CaseSource.SEEDED.value))
            & (F.col("recorded_at") <= F.lit(as_of))
            & (F.col("tranpostdt") >= F.lit(start))
            & (F.col("tranpostdt") < F.lit(end))
        )
        .select(*TRANSACTION_KEY)
        .distinct()
        .withColumn(LABEL, F.lit(1.0))
    )
    return scored.join(frauds, list(TRANSACTION_KEY), "left").select(
        *TRANSACTION_KEY, FEATURES, F.coalesce(F.col(LABEL), F.lit(0.0)).alias(LABEL)
    )
