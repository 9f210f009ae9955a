"""Train the risk model with Spark MLlib: a logistic regression over the labelled risk features
(:func:`~fraudshop.transforms.training.labelled_transactions`), on standardised features with L2
regularisation, unweighted, so its probabilities keep the fraud base rate. Where the data lives: on a
cluster it trains on the executors."""

from __future__ import annotations

import logging
from datetime import datetime

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraudshop.model.risk import RISK_FEATURE_SET, RISK_FEATURES, RiskModel, model_version
from fraudshop.pipeline.held import computed_once
from fraudshop.transforms.training import FEATURES, LABEL

log = logging.getLogger(__name__)


class NotEnoughLabels(ValueError):
    """The training window holds no transaction, or no fraud, or nothing else: nothing to learn from."""


def train_risk_model(
    labelled: DataFrame, as_of: datetime, trained_at: datetime, regularization: float, max_iterations: int
) -> RiskModel:
    """Fit the model on ``labelled`` (:func:`~fraudshop.transforms.training.labelled_transactions`)."""
    vectors = labelled.select(array_to_vector(F.col(FEATURES)).alias("features"), F.col(LABEL).alias("label"))
    with computed_once(vectors) as data:
        counts = data.agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("frauds")).first()
        rows, frauds = (int(counts.rows), int(counts.frauds or 0)) if counts else (0, 0)
        if not frauds or frauds == rows:
            raise NotEnoughLabels(
                f"the training window holds {rows} scored transactions, {frauds} of them confirmed frauds: a model "
                "needs both frauds and genuine transactions (record confirmed cases, or widen risk.training_days)"
            )
        log.info("training the risk model on %d transactions, %d frauds", rows, frauds)
        estimator = LogisticRegression(
            regParam=regularization, elasticNetParam=0.0, standardization=True, maxIter=max_iterations
        )
        fitted = estimator.fit(data)
        auc = float(fitted.summary.areaUnderROC)
    return RiskModel(
        version=model_version(trained_at),
        feature_set=RISK_FEATURE_SET,
        features=RISK_FEATURES,
        intercept=float(fitted.intercept),
        coefficients=tuple(float(x) for x in fitted.coefficients.toArray()),
        trained_at=trained_at,
        as_of=as_of,
        training_rows=rows,
        training_frauds=frauds,
        training_auc=auc,
        regularization=regularization,
    )
