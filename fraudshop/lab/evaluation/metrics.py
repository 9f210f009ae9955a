"""The handbook's detection metrics (*Reproducible Machine Learning for Credit Card Fraud Detection*,
chapter 4): AUC ROC and average precision over the test transactions, and Card Precision@k, each day
the share of the k cards with the highest risk that really had a fraud that day. Pure pandas and
scikit-learn over one frame of test transactions: ``day``, ``card``, ``label`` (1 fraud) and a score
column per signal."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

#: The handbook's k.
TOP_K = 100


def known_compromised_excluded(
    test: pd.DataFrame, labelled: pd.DataFrame, test_from: date, feedback_delay_days: int, known_days: int = 7
) -> pd.DataFrame:
    """``test`` without the transactions of cards already known to be compromised, as the handbook's test
    sets are built: a test day's transaction is left out when its card had a fraud in the ``known_days``
    before the feedback delay preceding the test (the handbook's training week), or on a day whose labels
    came back before it (up to the delay before it). ``labelled``: every replayed transaction's ``day``,
    ``card`` and ``label``."""
    frauds = labelled[labelled["label"] == 1]
    first_known = test_from - timedelta(days=feedback_delay_days + known_days)
    first_fraud = frauds[frauds["day"] >= first_known].groupby("card")["day"].min()  # each card's first one since
    # A card is known on a day when its first fraud since then is older than the delay (NaT: never known).
    known = pd.to_datetime(test["card"].map(first_fraud)) < pd.to_datetime(test["day"]) - pd.Timedelta(
        days=feedback_delay_days
    )
    return test[~known]


def card_precision_at_k(test: pd.DataFrame, score: str, k: int = TOP_K) -> float:
    """The handbook's Card Precision@k: each day, the cards ranked by their highest ``score`` that day; the
    share of the first ``k`` that had a fraud that day; a card found compromised (in a day's first k, with a
    fraud) is left out of the later days; the mean over days."""
    found: set[object] = set()
    precisions = []
    for _, day in test.groupby("day", sort=True):
        cards = day[~day["card"].isin(found)].groupby("card").agg(risk=(score, "max"), fraud=("label", "max"))
        # Ties broken by card id, so a run gives the same figure every time.
        top = cards.sort_values(["risk"], ascending=False, kind="stable").head(k)
        precisions.append(float(top["fraud"].sum()) / k)
        found.update(top.index[top["fraud"] == 1])
    return float(np.mean(precisions)) if precisions else float("nan")


def signal_figures(test: pd.DataFrame, score: str) -> dict[str, float | bool | None]:
    """AUC ROC, average precision and Card Precision@100 of the signal ``score`` on ``test``; a constant
    signal ranks nothing: its AUC ROC is 0.5 and its Card Precision undefined (it would only reflect the
    cards' order)."""
    scores, labels = test[score].to_numpy(dtype=float), test["label"].to_numpy(dtype=int)
    if np.isnan(scores).any():
        raise ValueError(f"{int(np.isnan(scores).sum())} test transactions have no {score}")
    constant = bool(np.all(scores == scores[0]))
    return {
        "auc_roc": 0.5 if constant else round(float(roc_auc_score(labels, scores)), 4),
        "average_precision": round(float(average_precision_score(labels, scores)), 4),
        "card_precision_at_100": None if constant else round(card_precision_at_k(test.sort_index(), score), 4),
        "constant": constant,
    }


def calibration(test: pd.DataFrame, probability: str) -> dict[str, float]:
    """How well probabilities match frequencies: their mean against the fraud rate, and the Brier score."""
    return {
        "mean_probability": round(float(test[probability].mean()), 5),
        "fraud_rate": round(float(test["label"].mean()), 5),
        "brier_score": round(float(brier_score_loss(test["label"], test[probability])), 5),
    }
