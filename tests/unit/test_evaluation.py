"""The evaluation's pure parts: reading the handbook's Parquet files, its records, the handbook's metrics
(Card Precision@k, the known-card exclusion) against hand-computed values, and the published page."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from fraudshop.lab.bench.publish import ACCURACY, write_benchmarks
from fraudshop.lab.evaluation.data import HANDBOOK_COLUMNS, LabelledDataError, as_records, load_labelled_transactions
from fraudshop.lab.evaluation.metrics import card_precision_at_k, known_compromised_excluded, signal_figures
from fraudshop.lab.evaluation.publish import ACCURACY_BEGIN, ACCURACY_END, render_accuracy_block, write_accuracy

REPOSITORY = Path(__file__).resolve().parents[2]
DAY = date(2018, 4, 10)


def handbook_file(path: Path, rows: list[tuple[int, datetime, int, int, float, int, int]]) -> None:
    pd.DataFrame(rows, columns=list(HANDBOOK_COLUMNS)).to_parquet(path)


def test_labelled_transactions_are_read_by_day_sampled_and_turned_into_records(tmp_path: Path) -> None:
    at = datetime(2018, 4, 1, 23, 59, 59, 500_000)
    handbook_file(
        tmp_path / "a.parquet",
        [(2, at + timedelta(seconds=1), 7, 70, 12.5, 0, 0), (1, at, 8, 80, 250.0, 1, 1)],
    )
    handbook_file(tmp_path / "b.parquet", [(3, at + timedelta(days=2), 7, 71, 5.0, 0, 0)])
    frame = load_labelled_transactions(tmp_path, last_day=date(2018, 4, 2))
    assert list(frame["TRANSACTION_ID"]) == [1, 2] and list(frame["day"]) == [date(2018, 4, 1), date(2018, 4, 2)]
    (first, second) = as_records(frame)
    assert first == {
        "account_no": "8", "tranid": "1", "tranpostdt": "2018-04-01T23:59:59.500Z", "amount": 250.0,
        "tranamt": 250.0, "merchant_id": "80",
    }  # fmt: skip
    assert second["tranpostdt"] == "2018-04-02T00:00:00.500Z"
    sampled = load_labelled_transactions(tmp_path, customers=1, seed=1)
    assert sampled["CUSTOMER_ID"].nunique() == 1


def test_input_that_is_not_the_handbooks_format_is_refused_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(LabelledDataError, match=r"no \*\.parquet file"):
        load_labelled_transactions(tmp_path)
    pd.DataFrame({"TRANSACTION_ID": [1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(LabelledDataError, match="no column TX_DATETIME"):
        load_labelled_transactions(tmp_path)


def transactions(*rows: tuple[int, str, float, int]) -> pd.DataFrame:
    """(day offset, card, score, label) rows."""
    return pd.DataFrame(
        [(DAY + timedelta(days=offset), card, score, label) for offset, card, score, label in rows],
        columns=["day", "card", "score", "label"],
    )


def test_card_precision_ranks_cards_by_their_highest_score_and_drops_cards_found_earlier() -> None:
    test = transactions(
        (0, "A", 0.9, 1),
        (0, "A", 0.1, 0),
        (0, "B", 0.8, 0),
        (0, "C", 0.2, 1),  # third: out of the top 2
        (1, "A", 0.99, 1),  # found on day 0: left out
        (1, "C", 0.5, 1),
        (1, "D", 0.4, 0),
    )
    # Day 0: A (fraud) and B: 1/2. Day 1: C (fraud) and D: 1/2.
    assert card_precision_at_k(test, "score", k=2) == 0.5
    # Without dropping A, day 1 would have been A and C: 2/2, a mean of 0.75.


def test_cards_known_to_be_compromised_are_left_out_as_the_handbook_does() -> None:
    labelled = transactions(
        (-8, "old", 0.0, 1),  # before the known week: unknown
        (-7, "known week", 0.0, 1),  # the week before the delay preceding the test: [test - 14, test - 7) days
        (1, "during test", 0.0, 1),  # its label is back on day 1 + 7
    )
    test = transactions(
        (7, "old", 0.5, 0),
        (7, "known week", 0.5, 0),
        (7, "during test", 0.5, 0),  # 6 days after its fraud: label not back
        (9, "during test", 0.5, 1),  # 8 days after: known
    )
    kept = known_compromised_excluded(test, labelled, DAY + timedelta(days=7), feedback_delay_days=7)
    assert list(zip(kept["card"], kept["day"], strict=True)) == [
        ("old", DAY + timedelta(days=7)),
        ("during test", DAY + timedelta(days=7)),
    ]


def test_a_constant_signal_ranks_nothing_and_a_missing_score_is_an_error() -> None:
    test = transactions((0, "A", 0.0, 1), (0, "B", 0.0, 0), (0, "C", 0.0, 0), (0, "D", 0.0, 0))
    figures = signal_figures(test, "score")
    assert figures == {"auc_roc": 0.5, "average_precision": 0.25, "card_precision_at_100": None, "constant": True}
    ranked = signal_figures(test.assign(score=[0.9, 0.1, 0.2, 0.3]), "score")
    assert ranked["auc_roc"] == 1.0 and ranked["average_precision"] == 1.0 and ranked["card_precision_at_100"] == 0.01
    with pytest.raises(ValueError, match="1 test transactions have no score"):
        signal_figures(test.assign(score=[0.9, float("nan"), 0.2, 0.3]), "score")


FIGURES = {
    "finished_at": "2026-11-29 20:00 UTC",
    "commit": {"sha": "0123456789", "dirty": False},
    "replayed": {"transactions": 1000, "frauds": 9, "days": 7, "feedback_cases": 10, "seconds": 120.0},
    "model": {"version": "risk-v1@x", "training_days": 2, "training_transactions": 300, "training_frauds": 3,
              "training_auc_roc": 0.9},
    "test": {"from": "2018-04-06", "to": "2018-04-07", "transactions": 200, "frauds": 2,
             "known_compromised_excluded": 1, "measured_transactions": 199, "measured_frauds": 2},
    "signals": {"amount": {"signal": "amount only (baseline)", "auc_roc": 0.7, "average_precision": 0.2,
                           "card_precision_at_100": 0.01, "constant": False},
                "profile_change_window": {"signal": "profile-change window", "auc_roc": 0.5,
                                          "average_precision": 0.01, "card_precision_at_100": None, "constant": True}},
    "calibration": {"mean_probability": 0.01, "fraud_rate": 0.01, "brier_score": 0.009},
}  # fmt: skip


def test_the_figures_go_under_accuracy_and_a_bench_run_keeps_them(tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_text(json.dumps({"capacity": 1}))
    write_accuracy(FIGURES, tmp_path)
    assert json.loads((tmp_path / "latest.json").read_text()) == {"capacity": 1, ACCURACY: FIGURES}
    run = tmp_path / "run"
    run.mkdir()
    (run / "bench.json").write_text(json.dumps({"capacity": 2, "started_at": "2026-11-29T00:00:00+00:00"}))
    (run / "bench.png").write_bytes(b"png")
    write_benchmarks(run, tmp_path, {"started_at": "x", "correctness_passed": True})
    assert json.loads((tmp_path / "latest.json").read_text())[ACCURACY] == FIGURES
    assert json.loads((tmp_path / "latest.json").read_text())["capacity"] == 2


def test_the_page_says_the_figures_of_benchmarks_latest_json() -> None:
    block = render_accuracy_block(FIGURES)
    assert "| amount only (baseline) | 0.7000 | 0.2000 | 0.0100 |" in block
    assert "| profile-change window (constant) | 0.5000 | 0.0100 | - |" in block
    assert "commit 0123456" in block
    latest = json.loads((REPOSITORY / "benchmarks" / "latest.json").read_text())
    for page in (REPOSITORY / "README.md", REPOSITORY / "docs" / "evaluation.md"):
        written = page.read_text().partition(ACCURACY_BEGIN)[2].partition(ACCURACY_END)[0]
        if ACCURACY in latest:
            assert written == "\n" + render_accuracy_block(latest[ACCURACY]), page
        else:
            assert "Not measured yet" in written, page
