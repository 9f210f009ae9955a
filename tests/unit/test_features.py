"""The transaction vector (model/features.py): what a transaction's history says about it, and the
vector itself, as plain functions over pandas frames."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudshop.model.features import (
    BLOCKS,
    CHANGE_EVENT,
    CONTEXT_COLUMNS,
    EVENT_COLUMNS,
    HISTORY_DAYS,
    TRANSACTION_EVENT,
    TRANSACTION_INPUTS,
    VECTOR_DIMENSIONS,
    transaction_context,
    transaction_vectors,
    vectors_of,
)

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def transactions(*rows: tuple[str, datetime, str, float, str | None]) -> pd.DataFrame:
    """(account, time, tranid, amount, merchant) rows; category and channel from the merchant."""
    return pd.DataFrame(
        [
            (account, at, tranid, amount, merchant, "5814" if merchant else None, "pos" if merchant else None)
            for account, at, tranid, amount, merchant in rows
        ],
        columns=list(TRANSACTION_INPUTS),
    )


def events(*rows: tuple[object, ...]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(EVENT_COLUMNS))


def stored(account: str, at: datetime, tranid: str, amount: float, merchant: str | None = "M1") -> tuple[object, ...]:
    return (account, at, tranid, amount, merchant, TRANSACTION_EVENT)


def change(account: str, at: datetime) -> tuple[object, ...]:
    return (account, at, "", float("nan"), None, CHANGE_EVENT)


def context_of(batch: pd.DataFrame, known: pd.DataFrame) -> list[dict[Hashable, Any]]:
    return transaction_context(batch, known).to_dict("records")


def test_the_usual_amount_is_the_median_of_the_history_before_it_within_the_window() -> None:
    known = events(
        stored("A", AT - timedelta(days=HISTORY_DAYS, seconds=1), "old", 1_000.0),  # outside the window
        stored("A", AT - timedelta(days=HISTORY_DAYS), "edge", 10.0),  # on its edge: inside
        stored("A", AT - timedelta(days=2), "h1", 20.0),
        stored("A", AT + timedelta(minutes=1), "later", 5_000.0),  # after it
        stored("B", AT - timedelta(days=1), "other", 7_000.0),  # another account's
    )
    batch = transactions(("A", AT, "t1", 90.0, "M1"), ("A", AT + timedelta(seconds=1), "t2", 30.0, "M1"))
    first, second = context_of(batch, known)
    assert first["usual_amount"] == 15.0  # median of 10 and 20
    # The edge is now a second out of t2's window; t1, before it in the same batch, is in its history.
    assert second["usual_amount"] == 55.0  # median of 20 and 90


def test_ties_in_time_are_ordered_by_tranid() -> None:
    batch = transactions(("A", AT, "b", 50.0, "M1"), ("A", AT, "a", 10.0, "M1"))
    b, a = context_of(batch, events())
    assert np.isnan(a["usual_amount"]) and a["transactions_last_hour"] == 0
    assert b["usual_amount"] == 10.0 and b["transactions_last_hour"] == 1


def test_a_transaction_without_history_has_no_usual_amount_and_a_new_merchant() -> None:
    (only,) = context_of(transactions(("A", AT, "t", 12.0, "M1")), events())
    assert np.isnan(only["usual_amount"]) and only["merchant_is_new"] == 1.0
    assert np.isnan(only["seconds_since_change"])
    assert only["transactions_last_hour"] == only["transactions_last_day"] == 0


def test_a_merchant_is_new_unless_the_window_holds_one_of_the_accounts_transactions_there() -> None:
    known = events(
        stored("A", AT - timedelta(days=3), "seen", 10.0, "M1"),
        stored("A", AT - timedelta(days=HISTORY_DAYS + 1), "long ago", 10.0, "M2"),
        stored("B", AT - timedelta(days=1), "other account", 10.0, "M3"),
        stored("A", AT + timedelta(days=1), "after", 10.0, "M4"),
    )
    batch = transactions(
        ("A", AT, "1", 5.0, "M1"),
        ("A", AT, "2", 5.0, "M2"),
        ("A", AT, "3", 5.0, "M3"),
        ("A", AT, "4", 5.0, "M4"),
        ("A", AT, "5", 5.0, None),
    )
    assert [row["merchant_is_new"] for row in context_of(batch, known)][:4] == [0.0, 1.0, 1.0, 1.0]
    assert np.isnan(context_of(batch, known)[4]["merchant_is_new"])  # no merchant: unknown


def test_velocity_counts_the_history_in_the_last_hour_and_day() -> None:
    known = events(
        *(stored("A", AT - timedelta(minutes=10 * i), f"h{i}", 1.0) for i in range(1, 5)),  # 10-40 min before
        stored("A", AT - timedelta(hours=1), "hour edge", 1.0),  # on the hour's edge: inside
        stored("A", AT - timedelta(hours=5), "earlier today", 1.0),
        stored("A", AT - timedelta(hours=25), "yesterday", 1.0),
    )
    (row,) = context_of(transactions(("A", AT, "t", 1.0, "M1")), known)
    assert (row["transactions_last_hour"], row["transactions_last_day"]) == (5, 6)


def test_counts_and_mean_amounts_over_the_last_day_week_and_month() -> None:
    known = events(
        stored("A", AT - timedelta(hours=2), "today", 10.0),
        stored("A", AT - timedelta(days=1), "day edge", 20.0),  # on the day's edge: inside
        stored("A", AT - timedelta(days=3), "this week", 60.0),
        stored("A", AT - timedelta(days=7, seconds=1), "just over a week", 100.0),
        stored("A", AT - timedelta(days=HISTORY_DAYS), "month edge", 210.0),
        stored("A", AT - timedelta(days=HISTORY_DAYS, seconds=1), "too old", 9_999.0),
        stored("B", AT - timedelta(hours=1), "another account's", 5_000.0),
    )
    first, second = context_of(transactions(("A", AT, "t", 1.0, "M1"), ("A", AT, "u", 3.0, "M1")), known)
    assert (first["transactions_last_day"], first["transactions_last_week"], first["transactions_last_month"]) == (
        2,
        3,
        5,
    )
    assert first["mean_amount_last_day"] == 15.0 and first["mean_amount_last_week"] == 30.0
    assert first["mean_amount_last_month"] == 80.0  # (10 + 20 + 60 + 100 + 210) / 5
    # "u" follows "t" (same time, higher tranid): t is in its history.
    assert second["transactions_last_day"] == 3 and second["mean_amount_last_day"] == pytest.approx(31 / 3)
    (alone,) = context_of(transactions(("C", AT, "c", 1.0, "M1")), known)
    assert alone["transactions_last_month"] == 0 and np.isnan(alone["mean_amount_last_month"])


def test_time_since_the_latest_profile_change_at_or_before_it_within_the_window() -> None:
    known = events(
        change("A", AT - timedelta(hours=30)),
        change("A", AT - timedelta(hours=2)),
        change("A", AT + timedelta(minutes=5)),  # after it
        change("B", AT - timedelta(minutes=1)),  # another account's
        change("C", AT - timedelta(days=HISTORY_DAYS, seconds=1)),  # too old
    )
    batch = transactions(("A", AT, "a", 1.0, "M1"), ("B", AT, "b", 1.0, "M1"), ("C", AT, "c", 1.0, "M1"))
    a, b, c = context_of(batch, known)
    assert a["seconds_since_change"] == 2 * 3_600 and b["seconds_since_change"] == 60
    assert np.isnan(c["seconds_since_change"])


def test_context_rows_follow_the_transactions_order_and_index() -> None:
    batch = transactions(("B", AT, "x", 1.0, "M1"), ("A", AT, "y", 2.0, "M1")).set_index(pd.Index([7, 3]))
    context = transaction_context(batch, events(stored("A", AT - timedelta(days=1), "h", 8.0)))
    assert list(context.index) == [7, 3] and list(context.columns) == list(CONTEXT_COLUMNS)
    usual = context["usual_amount"].to_dict()
    assert np.isnan(usual[7]) and usual[3] == 8.0


def test_vectors_are_unit_length_float32_of_the_documented_width() -> None:
    batch = transactions(("A", AT, "t", 12.5, "M1"), ("A", AT, "u", 0.0, None))
    vectors = vectors_of(batch, events())
    assert vectors.dtype == np.float32 and vectors.shape == (2, VECTOR_DIMENSIONS)
    assert VECTOR_DIMENSIONS == sum(block.width for block in BLOCKS) == 30
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def _block(vectors: np.ndarray, name: str) -> np.ndarray:
    start = 0
    for block in BLOCKS:
        if block.name == name:
            return vectors[:, start : start + block.width]
        start += block.width
    raise KeyError(name)


def test_amount_against_usual_is_zero_without_history_and_grows_with_the_amount() -> None:
    known = events(*(stored("A", AT - timedelta(days=d), f"h{d}", 20.0) for d in range(1, 6)))
    batch = transactions(("A", AT, "usual", 20.0, "M1"), ("A", AT, "five times", 100.0, "M1"))
    vectors = vectors_of(batch, known)
    usual, five_times = _block(vectors, "amount_vs_usual")[:, 0]
    assert usual == pytest.approx(0.0, abs=1e-6) and five_times > 0.2
    (alone,) = _block(vectors_of(transactions(("Z", AT, "z", 100.0, "M1")), events()), "amount_vs_usual")[:, 0]
    assert alone == 0.0


def test_a_card_testing_burst_is_closer_to_another_burst_than_to_a_usual_purchase() -> None:
    """Two cards probed with small online amounts at the same merchant, after many quick attempts,
    against a card's usual coffee: the similarity the vector exists for."""
    history = [stored("P", AT - timedelta(days=d), f"p{d}", 4.5, "COFFEE") for d in range(1, 20)]
    for card in ("X", "Y"):
        history += [stored(card, AT - timedelta(days=d), f"{card}{d}", 60.0, "GROCER") for d in range(1, 20)]
        history += [stored(card, AT - timedelta(minutes=m), f"{card}m{m}", 1.0, "TESTER") for m in range(1, 9)]
    batch = pd.DataFrame(
        [
            ("X", AT, "x", 1.0, "TESTER", "5999", "online"),
            ("Y", AT, "y", 1.0, "TESTER", "5999", "online"),
            ("P", AT, "p", 4.5, "COFFEE", "5814", "pos"),
        ],
        columns=list(TRANSACTION_INPUTS),
    )
    x, y, p = vectors_of(batch, events(*history))
    assert float(x @ y) > 0.99 and float(x @ p) < 0.6


def test_vectors_come_from_the_context_given() -> None:
    batch = transactions(("A", AT, "t", 50.0, "M1"))
    no_history = transaction_vectors(batch, transaction_context(batch, events()))
    recent_change = transaction_vectors(batch, transaction_context(batch, events(change("A", AT))))
    assert _block(no_history, "profile_change")[0, 0] == 0.0 and _block(recent_change, "profile_change")[0, 0] > 0


def test_the_vector_is_the_same_in_another_process() -> None:
    """Hashed blocks are seeded by a digest, never by Python's per-process salted hash."""
    script = (
        "import pandas as pd; from datetime import datetime, UTC;"
        "from fraudshop.model.features import vectors_of, TRANSACTION_INPUTS, EVENT_COLUMNS;"
        "t = pd.DataFrame([('A', datetime(2026, 3, 10, tzinfo=UTC), 't', 12.5, 'M1', '5814', 'pos')],"
        " columns=list(TRANSACTION_INPUTS));"
        "print(vectors_of(t, pd.DataFrame(columns=list(EVENT_COLUMNS))).tobytes().hex())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2")
    }
    here = transactions(("A", datetime(2026, 3, 10, tzinfo=UTC), "t", 12.5, "M1"))
    assert runs == {vectors_of(here, events()).tobytes().hex() + "\n"}


def test_velocity_stops_at_its_limits() -> None:
    """A card transacting every minute for a day is no more velocity than one at the limits (20 in the
    hour, 100 in the day): past them the block would outweigh the rest of the vector."""
    busy = events(*(stored("A", AT - timedelta(minutes=m), f"h{m}", 5.0) for m in range(1, 24 * 60)))
    at_limits = events(
        *(stored("B", AT - timedelta(minutes=m), f"h{m}", 5.0) for m in range(1, 21)),
        *(stored("B", AT - timedelta(hours=2, minutes=m), f"d{m}", 5.0) for m in range(80)),
    )
    both = transactions(("A", AT, "a", 5.0, "M1"), ("B", AT, "b", 5.0, "M1"))
    vectors = vectors_of(both, pd.concat([busy, at_limits]))
    assert (_block(vectors, "velocity") == _block(vectors, "velocity")[1]).all()
    assert np.allclose(vectors[0], vectors[1], atol=1e-6)  # the rest of the two is alike too


def test_a_row_the_job_only_scored_is_not_history_and_the_batchs_own_record_wins() -> None:
    """A replay after a failed batch finds the scores' partial write: a transaction row without an amount
    or a merchant. It is not the transaction: the batch's own record of that key is."""
    scored_only = ("A", AT, "9", float("nan"), None, TRANSACTION_EVENT)
    known = events(stored("A", AT - timedelta(days=1), "h", 30.0), scored_only)
    batch = transactions(("A", AT, "9", 10.0, "M1"), ("A", AT + timedelta(seconds=1), "10", 5.0, "M1"))
    first, second = context_of(batch, known)
    assert first["usual_amount"] == 30.0 and first["merchant_is_new"] == 0.0
    assert second["usual_amount"] == 20.0  # median of 30 and the batch's own 10


def test_times_decades_apart_fit_the_sort_key() -> None:
    old = datetime(1990, 1, 1, tzinfo=UTC)
    batch = transactions(*((f"A{n}", AT, f"t{n}", 5.0, "M1") for n in range(10_000)), ("OLD", old, "o", 5.0, "M1"))
    known = events(stored("OLD", old - timedelta(days=1), "h", 7.0), stored("A1", AT - timedelta(days=1), "h", 9.0))
    context = transaction_context(batch, known)
    assert context["usual_amount"].iloc[-1] == 7.0 and context["usual_amount"].iloc[1] == 9.0


def test_refunds_in_the_history_do_not_break_the_amount_against_usual() -> None:
    known = events(*(stored("A", AT - timedelta(days=d), f"r{d}", -5.0) for d in range(1, 4)))
    vector = vectors_of(transactions(("A", AT, "t", 50.0, "M1")), known)
    # The usual amount floors at 0: tanh(log(51 / 1)), about 1 before the vector is normalised.
    assert np.isfinite(vector).all() and _block(vector, "amount_vs_usual")[0, 0] > 0.5
