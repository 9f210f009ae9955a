"""The transaction vector (:mod:`fraudshop.model.features`) and its similarity score
(:mod:`fraudshop.model.cases`) over a micro-batch: each account's batch transactions and known events
meet in one Spark partition, where the model's own numpy functions compute their context, vectors and
scores (Arrow batches through ``mapInPandas``): one implementation for the stream and for a caller
holding one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraudshop.model.cases import KnownCases, scores_against
from fraudshop.model.features import (
    CONTEXT_COLUMNS,
    EVENT_COLUMNS,
    TRANSACTION_INPUTS,
    Transactions,
    transaction_context,
    vectors_of_arrays,
)
from fraudshop.model.risk import RISK_FEATURE_SET, MerchantTotals, RiskModel, risk_features_of
from fraudshop.model.tables import TRANSACTION_KEY

#: The column holding a transaction's vector (array<float>, VECTOR_DIMENSIONS long).
VECTOR = "vector"
_BATCH_EVENT = "batch"
#: What :func:`transaction_vectors` returns for each of the batch's transactions.
VECTOR_SCHEMA = ", ".join(
    [
        "account_no string, tranpostdt timestamp, tranid string",
        *(f"{name} double" for name in CONTEXT_COLUMNS),
        f"{VECTOR} array<float>",
    ]
)
#: What :func:`scored_transactions` returns: the vector's columns, then the score and its evidence.
SCORED_SCHEMA = (
    f"{VECTOR_SCHEMA}, risk_score double, nearest_cases array<string>, nearest_cosines array<float>, "
    "nearest_pattern string, risk_features array<float>, risk_feature_set string, fraud_probability double, "
    "model_version string"
)
_INPUT_COLUMNS: tuple[str, ...] = (*TRANSACTION_INPUTS, "event")


def transaction_vectors(transactions: DataFrame, events: DataFrame) -> DataFrame:
    """:data:`VECTOR_SCHEMA` rows: each of ``transactions`` (:data:`TRANSACTION_INPUTS`; each key once),
    its context and its vector, against ``events`` (:data:`EVENT_COLUMNS`: the accounts' stored
    transactions in their history windows and their profile changes)."""
    return _accounts_together(transactions, events).mapInPandas(_vectors_of_partition, VECTOR_SCHEMA)


@dataclass(frozen=True)
class Scoring:
    """What a batch is scored with: every known case (broadcast), how many nearest cases a similarity
    score is made of, the risk model (None before the first training: no probability), and for the
    merchants' fraud shares their daily totals (broadcast) and the feedback delay."""

    cases: Broadcast[KnownCases]
    nearest: int
    model: RiskModel | None
    merchant_totals: Broadcast[MerchantTotals]
    feedback_delay_days: int


def scored_transactions(transactions: DataFrame, events: DataFrame, scoring: Scoring) -> DataFrame:
    """:data:`SCORED_SCHEMA` rows: :func:`transaction_vectors`' and each transaction's similarity score
    against every known case (exact search), with the ids and cosines of its nearest cases, its risk
    features and, given a model of the same feature set, its fraud probability and the model's version."""
    return _accounts_together(transactions, events).mapInPandas(
        partial(_vectors_of_partition, score=partial(_scores_of, scoring=scoring)), SCORED_SCHEMA
    )


def _scores_of(batch: Transactions, context: np.ndarray, vectors: np.ndarray, scoring: Scoring) -> pd.DataFrame:
    known = scoring.cases.value
    scores = scores_against(vectors, known, scoring.nearest)
    pattern_of = dict(zip(known.case_ids, known.patterns, strict=True))
    features = risk_features_of(
        batch,
        context,
        scores.risk_scores,
        known.confirmed,
        scoring.merchant_totals.value,
        scoring.feedback_delay_days,
    )
    model = scoring.model if scoring.model is not None and scoring.model.applies_to(RISK_FEATURE_SET) else None
    return pd.DataFrame(
        {
            "risk_score": scores.risk_scores,
            "nearest_cases": scores.nearest_case_ids,
            "nearest_cosines": scores.nearest_cosines,
            "nearest_pattern": [pattern_of[ids[0]] if ids else None for ids in scores.nearest_case_ids],
            "risk_features": list(features),
            "risk_feature_set": RISK_FEATURE_SET,
            # None, not NaN, without a model: Arrow turns None into SQL null.
            "fraud_probability": list(model.probabilities(features)) if model else [None] * len(vectors),
            "model_version": model.version if model else None,
        }
    )


def _accounts_together(transactions: DataFrame, events: DataFrame) -> DataFrame:
    """The batch's transactions and the events, an account's rows in one partition, so one call of the
    numpy function sees all of them."""
    batch = transactions.select(*TRANSACTION_INPUTS, F.lit(_BATCH_EVENT).alias("event"))
    known = events.select(
        *(F.col(name) if name in EVENT_COLUMNS else F.lit(None).cast("string").alias(name) for name in _INPUT_COLUMNS)
    )
    partitions = transactions.sparkSession.sparkContext.defaultParallelism
    return batch.unionByName(known).repartition(partitions, "account_no")


def _vectors_of_partition(
    frames: Iterable[pd.DataFrame],
    score: Callable[[Transactions, np.ndarray, np.ndarray], pd.DataFrame] | None = None,
) -> Iterator[pd.DataFrame]:
    """The whole partition at once: an account's rows may straddle two of its Arrow batches."""
    parts = list(frames)
    if not parts:
        return
    rows = pd.concat(parts, ignore_index=True)
    is_batch = rows["event"] == _BATCH_EVENT
    batch = rows[is_batch].reset_index(drop=True)
    if not len(batch):
        return
    context = transaction_context(batch[list(TRANSACTION_INPUTS)], rows[~is_batch][list(EVENT_COLUMNS)])
    # Converted once for the vectors and the scores: the numpy cores the frame functions wrap.
    inputs, context_values = Transactions.of_frame(batch), context[list(CONTEXT_COLUMNS)].to_numpy(dtype=float)
    vectors = vectors_of_arrays(inputs, context_values)
    rows = pd.concat([batch[list(TRANSACTION_KEY)], context], axis=1).assign(**{VECTOR: list(vectors)})
    yield rows if score is None else pd.concat([rows, score(inputs, context_values, vectors)], axis=1)
