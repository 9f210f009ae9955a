"""How the similarity threshold was chosen: on April to June only, from the scores an evaluation run stored.

``fraudshop evaluate ... --keep`` keeps its scratch keyspace; this reads the similarity score (``risk_score``)
the job stored for every transaction of the tuning months and, for each threshold, how many
``similar_to_fraud`` hits a day it gives, their precision (the share that are frauds) and their recall.
The threshold is the one with the best F1 on the tuning months' last month (June: the cases have had two
months of feedback to accumulate), among those giving at most 100 hits a day (the handbook's daily
budget of cards an analyst team checks).

    .venv/bin/python benchmarks/studies/similarity_threshold.py KEYSPACE > benchmarks/studies/similarity_threshold.txt
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from cassandra.concurrent import execute_concurrent_with_args

from fraudshop.config import load_config
from fraudshop.io.cassandra.session import cassandra_session, prepared
from fraudshop.lab.evaluation.data import load_labelled_transactions

TUNING_FROM, TUNING_TO, CHOSEN_ON = date(2018, 4, 1), date(2018, 6, 30), date(2018, 6, 1)
DAILY_BUDGET = 100
THRESHOLDS = [round(value, 2) for value in np.arange(0.50, 1.0, 0.02)]


def stored_scores(keyspace: str, customers: list[str]) -> pd.DataFrame:
    config = load_config()
    start = datetime.combine(TUNING_FROM, time(), tzinfo=UTC)
    end = datetime.combine(TUNING_TO + timedelta(days=1), time(), tzinfo=UTC)
    with cassandra_session(config.cassandra) as session:
        select = prepared(
            session,
            f"SELECT tranid, risk_score FROM {keyspace}.transaction WHERE account_no = ? AND tranpostdt >= ? "
            "AND tranpostdt < ?",
        )
        rows: list[tuple[str, float]] = []
        arguments = [(customer, start, end) for customer in customers]
        for success, result in execute_concurrent_with_args(session, select, arguments, concurrency=32):
            if not success:
                raise result
            rows.extend((row.tranid, row.risk_score) for row in result)
    return pd.DataFrame(rows, columns=["tranid", "similarity"])


def main(keyspace: str, data: Path) -> None:
    frame = load_labelled_transactions(data, TUNING_FROM, TUNING_TO, None, 0)
    frame = frame.assign(tranid=frame["TRANSACTION_ID"].astype(str))
    scores = stored_scores(keyspace, [str(customer) for customer in frame["CUSTOMER_ID"].unique()])
    scored = frame.merge(scores, on="tranid", how="inner")
    print(f"{len(scored):,} of {len(frame):,} tuning transactions scored, {int(scored['TX_FRAUD'].sum()):,} frauds")
    best: tuple[float, float] | None = None
    for period, part in (("April-June", scored), ("June", scored[scored["day"] >= CHOSEN_ON])):
        days = part["day"].nunique()
        print(f"\n{period} ({days} days, {int(part['TX_FRAUD'].sum()):,} frauds)")
        print(f"{'threshold':>9} {'hits/day':>9} {'precision':>9} {'recall':>7} {'F1':>6}")
        for threshold in THRESHOLDS:
            hit = part["similarity"] >= threshold
            hits, caught = int(hit.sum()), int((hit & (part["TX_FRAUD"] == 1)).sum())
            precision = caught / hits if hits else float("nan")
            recall = caught / max(int(part["TX_FRAUD"].sum()), 1)
            f1 = 2 * precision * recall / (precision + recall) if caught else 0.0
            print(f"{threshold:>9.2f} {hits / days:>9.1f} {precision:>9.3f} {recall:>7.3f} {f1:>6.3f}")
            if period == "June" and hits / days <= DAILY_BUDGET and (best is None or f1 > best[1]):
                best = (threshold, f1)
    print(
        f"\nchosen: {best[0] if best else 'none within the budget'} (best F1 in June within {DAILY_BUDGET} hits a day)"
    )


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/datasets/card-fraud-handbook"))
