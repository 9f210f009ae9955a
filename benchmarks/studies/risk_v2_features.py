"""How risk-v2's features were chosen: on April to June only, July (the evaluation's test month) untouched.

The risk features are recomputed in pandas from the handbook's data set (not by the pipeline: a study
of which features to compute, run in seconds), a logistic regression is trained on May 1-24 (the
cards' first 30 days are history only; training ends the 7-day feedback delay before the validation)
and measured on June with the evaluation's own metrics and exclusion of known compromised cards.

    .venv/bin/python benchmarks/studies/risk_v2_features.py [DATA_DIR] > benchmarks/studies/risk_v2_features.txt
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from fraudshop.lab.evaluation.metrics import known_compromised_excluded, signal_figures

DELAY = 7
TRAIN_FROM, VALIDATE_FROM, VALIDATE_TO = date(2018, 5, 1), date(2018, 6, 1), date(2018, 6, 30)


def features(data: Path) -> pd.DataFrame:
    frame = pd.concat(pd.read_parquet(path) for path in sorted(data.glob("*.parquet")))
    frame = frame[frame["TX_DATETIME"].dt.date <= VALIDATE_TO].sort_values("TX_DATETIME").reset_index(drop=True)
    frame["day"] = frame["TX_DATETIME"].dt.floor("D")
    # The card's history: its transactions in the 1, 7, 30 days before (the stream's context columns).
    by_card = frame[["TRANSACTION_ID", "CUSTOMER_ID", "TX_DATETIME", "TX_AMOUNT"]].sort_values(
        ["CUSTOMER_ID", "TX_DATETIME"]
    )
    by_card = by_card.set_index("TX_DATETIME")
    for window in (1, 7, 30):
        rolling = by_card.groupby("CUSTOMER_ID")["TX_AMOUNT"].rolling(f"{window}D", closed="left")
        by_card[f"count_{window}"] = rolling.count().fillna(0).to_numpy()
        by_card[f"mean_{window}"] = rolling.mean().to_numpy()
    by_card["median_30"] = by_card.groupby("CUSTOMER_ID")["TX_AMOUNT"].rolling("30D", closed="left").median().to_numpy()
    history = by_card.reset_index().set_index("TRANSACTION_ID")
    for column in ("count_1", "count_7", "count_30", "mean_1", "mean_7", "mean_30", "median_30"):
        frame[column] = frame["TRANSACTION_ID"].map(history[column])
    # The terminal's (merchant's) frauds and transactions per day, then sums over windows of days.
    daily = frame.groupby(["TERMINAL_ID", "day"]).agg(n=("TX_FRAUD", "size"), f=("TX_FRAUD", "sum"))
    days = pd.date_range(frame["day"].min(), frame["day"].max(), freq="D")
    every_day = pd.MultiIndex.from_product([daily.index.levels[0], days], names=["TERMINAL_ID", "day"])
    cumulative = daily.reindex(every_day, fill_value=0).groupby(level=0).cumsum()

    def days_sum(column: str, window: int, ending_before: int) -> pd.Series:
        """Per terminal and day d: the sum over days d - ending_before - window + 1 .. d - ending_before."""
        totals = cumulative[column].groupby(level=0)
        difference: pd.Series = totals.shift(ending_before).fillna(0) - totals.shift(ending_before + window).fillna(0)
        return difference

    terminal = pd.DataFrame(
        {
            **{f"share_{w}": days_sum("f", w, DELAY) / days_sum("n", w, DELAY).replace(0, np.nan) for w in (1, 7, 30)},
            **{f"terminal_count_{w}": days_sum("n", w, 0) for w in (1, 7, 30)},
            "frauds_known_30": days_sum("f", 30 - DELAY, DELAY),
        }
    ).fillna(0)
    frame = frame.join(terminal, on=["TERMINAL_ID", "day"])
    frame["log_amount"] = np.log1p(frame["TX_AMOUNT"])
    frame["amount_vs_usual"] = (frame["log_amount"] - np.log1p(frame["median_30"])).fillna(0)
    for window in (1, 7, 30):
        frame[f"log_count_{window}"] = np.log1p(frame[f"count_{window}"])
        frame[f"log_mean_{window}"] = np.log1p(frame[f"mean_{window}"].fillna(0))
        frame[f"log_terminal_count_{window}"] = np.log1p(frame[f"terminal_count_{window}"])
    frame["log_merchant_frauds"] = np.log1p(frame["frauds_known_30"])
    frame["night"] = (frame["TX_DATETIME"].dt.hour < 6).astype(float)
    frame["weekend"] = (frame["TX_DATETIME"].dt.weekday >= 5).astype(float)
    frame["date"] = frame["TX_DATETIME"].dt.date
    result: pd.DataFrame = frame
    return result


V1 = [
    "log_amount", "amount_vs_usual", "log_count_1", "log_count_7", "log_count_30", "log_mean_1", "log_mean_7",
    "log_mean_30", "night", "weekend", "log_merchant_frauds",
]  # fmt: skip
SHARES = ["share_1", "share_7", "share_30"]
FEATURE_SETS: dict[str, list[str]] = {
    "risk-v1 (less the similarity and the profile-change window)": V1,
    "+ raw amount": [*V1, "TX_AMOUNT"],
    "+ merchant fraud shares": [*V1, *SHARES],
    "+ both (risk-v2)": [*V1, "TX_AMOUNT", *SHARES],
    "+ the merchant's transaction counts too": [
        *V1,
        "TX_AMOUNT",
        *SHARES,
        "log_terminal_count_1",
        "log_terminal_count_7",
        "log_terminal_count_30",
    ],
    "the handbook's own 15 features": [
        "TX_AMOUNT",
        "night",
        "weekend",
        "count_1",
        "mean_1",
        "count_7",
        "mean_7",
        "count_30",
        "mean_30",
        "terminal_count_1",
        "share_1",
        "terminal_count_7",
        "share_7",
        "terminal_count_30",
        "share_30",
    ],
}


def main(data: Path) -> None:
    frame = features(data)
    training = frame[(frame["date"] >= TRAIN_FROM) & (frame["date"] < VALIDATE_FROM - timedelta(days=DELAY))]
    validation = frame[frame["date"] >= VALIDATE_FROM]
    labelled = pd.DataFrame({"day": frame["date"], "card": frame["CUSTOMER_ID"], "label": frame["TX_FRAUD"]})
    validation = validation.assign(card=validation["CUSTOMER_ID"], label=validation["TX_FRAUD"], day=validation["date"])
    kept = known_compromised_excluded(validation, labelled, VALIDATE_FROM, DELAY)
    last_training_day = VALIDATE_FROM - timedelta(days=DELAY + 1)
    print(
        f"training {len(training):,} transactions ({int(training['TX_FRAUD'].sum()):,} frauds), {TRAIN_FROM} to "
        f"{last_training_day}; validation {len(kept):,} ({int(kept['label'].sum()):,} frauds), {VALIDATE_FROM} to "
        f"{VALIDATE_TO}"
    )
    scores = kept[["day", "card", "label"]].assign(amount=kept["TX_AMOUNT"])
    print(f"amount alone: {signal_figures(scores, 'amount')}")
    for name, columns in FEATURE_SETS.items():
        scaler = StandardScaler().fit(training[columns].fillna(0).to_numpy())
        model = LogisticRegression(C=100, max_iter=1000).fit(
            scaler.transform(training[columns].fillna(0).to_numpy()), training["TX_FRAUD"]
        )
        scores[name] = model.predict_proba(scaler.transform(kept[columns].fillna(0).to_numpy()))[:, 1]
        print(f"{name}: {signal_figures(scores, name)}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/card-fraud-handbook"))
