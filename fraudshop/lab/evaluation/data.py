"""Labelled transactions in the format of the Fraud Detection Handbook's simulator (Parquet files with
its columns), read and turned into fraudshop's records: a customer is an account, a terminal a merchant."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fraudshop.model.records import Transaction

#: The columns an input file must have (the simulator's).
HANDBOOK_COLUMNS: tuple[str, ...] = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)


class LabelledDataError(ValueError):
    """The input is not labelled transactions in the handbook's format (or holds none of the days asked)."""


def load_labelled_transactions(
    directory: Path,
    first_day: date | None = None,
    last_day: date | None = None,
    customers: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Every ``*.parquet`` file of ``directory``, days ``first_day`` to ``last_day`` (UTC; the files' naive
    times are UTC), of ``customers`` customers drawn at random with ``seed`` (all by default); with the
    column ``day`` added, ordered by time then id."""
    files = sorted(directory.glob("*.parquet"))
    if not files:
        raise LabelledDataError(f"no *.parquet file in {directory}")
    parts = []
    for path in files:
        missing = [name for name in HANDBOOK_COLUMNS if name not in pq.read_schema(path).names]
        if missing:
            raise LabelledDataError(f"{path}: no column {', '.join(missing)} (expected {', '.join(HANDBOOK_COLUMNS)})")
        parts.append(pd.read_parquet(path, columns=list(HANDBOOK_COLUMNS)))
    frame = pd.concat(parts, ignore_index=True)
    times = pd.to_datetime(frame["TX_DATETIME"])
    frame["TX_DATETIME"] = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    frame["day"] = frame["TX_DATETIME"].dt.date
    if first_day is not None:
        frame = frame[frame["day"] >= first_day]
    if last_day is not None:
        frame = frame[frame["day"] <= last_day]
    if customers is not None:
        everyone = np.sort(frame["CUSTOMER_ID"].unique())
        chosen = np.random.default_rng(seed).choice(everyone, size=min(customers, len(everyone)), replace=False)
        frame = frame[frame["CUSTOMER_ID"].isin(chosen)]
    if frame.empty:
        raise LabelledDataError(f"{directory} holds no transaction from {first_day} to {last_day}")
    return frame.sort_values(["TX_DATETIME", "TRANSACTION_ID"], ignore_index=True)


def as_records(frame: pd.DataFrame) -> list[Transaction]:
    """fraudshop's records of ``frame``'s transactions: the customer's id is the account number, the
    terminal's the merchant id, the transaction's id the tranid; the label stays out."""
    times = frame["TX_DATETIME"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    return [
        {"account_no": str(customer), "tranid": str(tranid), "tranpostdt": at, "amount": float(amount),
         "tranamt": float(amount), "merchant_id": str(terminal)}
        for customer, tranid, at, amount, terminal in zip(
            frame["CUSTOMER_ID"], frame["TRANSACTION_ID"], times, frame["TX_AMOUNT"], frame["TERMINAL_ID"], strict=True
        )
    ]  # fmt: skip
