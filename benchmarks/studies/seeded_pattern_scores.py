"""How the labelled patterns' transactions score against the seeded starter set: the share of each
pattern's frauds, and of its instances' ordinary purchases, at or over a few thresholds.

Ten instances of each pattern (seeds 100 to 109, none of them among the seeded cases' seeds) are scored
against ``fraudshop cases seed``'s 25 instances per pattern, with the model's own functions: each
fraud against its account's whole ordinary history, each ordinary purchase against the same history.

    .venv/bin/python benchmarks/studies/seeded_pattern_scores.py > benchmarks/studies/seeded_pattern_scores.txt
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from fraudshop.lab.patterns import FraudPattern, pattern_instances, seeded_pattern_cases
from fraudshop.model.cases import KnownCases, scores_against
from fraudshop.model.features import (
    EVENT_COLUMNS,
    TRANSACTION_EVENT,
    TRANSACTION_INPUTS,
    transaction_context,
    transaction_vectors,
)
from fraudshop.model.records import Transaction

AT = datetime(2026, 3, 1, tzinfo=UTC)
THRESHOLDS = (0.8, 0.9, 0.92, 0.94)


def inputs(records: Sequence[Transaction]) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    frame["tranpostdt"] = pd.to_datetime(frame["tranpostdt"], utc=True)
    return frame.reindex(columns=list(TRANSACTION_INPUTS))


def scores(transactions: pd.DataFrame, history: pd.DataFrame, known: KnownCases) -> np.ndarray:
    events = history[list(EVENT_COLUMNS[:5])].assign(event=TRANSACTION_EVENT)
    vectors = transaction_vectors(transactions, transaction_context(transactions, events))
    return np.asarray(scores_against(vectors, known, 5).risk_scores)


def main() -> None:
    known = KnownCases.of(seeded_pattern_cases(25, 0, AT))
    print(f"{len(known.case_ids)} seeded cases; share at or over each threshold of " + ", ".join(map(str, THRESHOLDS)))
    for pattern in FraudPattern:
        frauds, ordinary = [], []
        for seed in range(100, 110):
            (instance,) = pattern_instances(pattern, 1, seed, AT - timedelta(hours=1))
            history = inputs(instance.history)
            frauds.append(scores(inputs(instance.frauds), history, known))
            ordinary.append(scores(history, history, known))
        fraud_scores, ordinary_scores = np.concatenate(frauds), np.concatenate(ordinary)
        print(
            f"{pattern.value}: {len(fraud_scores)} frauds "
            + " ".join(f"{(fraud_scores >= t).mean():.2f}" for t in THRESHOLDS)
            + f"; {len(ordinary_scores)} ordinary purchases "
            + " ".join(f"{(ordinary_scores >= t).mean():.3f}" for t in THRESHOLDS)
        )


if __name__ == "__main__":
    main()
