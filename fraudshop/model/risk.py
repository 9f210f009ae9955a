"""The risk model: one fraud probability per transaction, from its risk features by a logistic regression
trained on the confirmed cases (Spark MLlib trains it, :mod:`fraudshop.transforms.training`; this module
applies it). Pure numpy: the stream computes the features and the probability of a batch at once, a
caller holding one transaction the same way, with the same functions.

The features are computed once, in the stream, and stored with the transaction (``risk_features``), so
the model is trained on exactly what the stream saw when it scored. ``docs/risk-model.md`` defines each.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import numpy as np
import pandas as pd

from fraudshop.model.features import (
    CONTEXT_COLUMNS,
    CONTEXT_INDEX,
    DAY_MICROS,
    HISTORY_DAYS,
    Transactions,
    utc_seconds_of_day,
    utc_weekday,
)

#: A merchant's confirmed-fraud share over a window of so many days: each window ends where the transaction's
#: day less the feedback delay begins (as the handbook's terminal risk), so its labels have come back.
FRAUD_SHARE_FEATURES: dict[str, int] = {
    "merchant_fraud_share_last_day": 1,
    "merchant_fraud_share_last_week": 7,
    "merchant_fraud_share_last_month": 30,
}
#: The names of the risk features, in the order of ``risk_features`` (docs/risk-model.md defines each).
RISK_FEATURES: tuple[str, ...] = (
    "similarity",
    "amount",
    "log_amount",
    "amount_vs_usual",
    "log_transactions_last_day",
    "log_transactions_last_week",
    "log_transactions_last_month",
    "log_mean_amount_last_day",
    "log_mean_amount_last_week",
    "log_mean_amount_last_month",
    "profile_change_window",
    "merchant_is_new",
    "night",
    "weekend",
    "log_merchant_frauds_last_month",
    "log_account_frauds_last_month",
    *FRAUD_SHARE_FEATURES,
)
#: Names this version of the definitions: a model is trained on, and applies to, rows of its set only.
RISK_FEATURE_SET = "risk-v2"
#: The profile-change window of the original rule: a change at most this long before the transaction.
PROFILE_CHANGE_WINDOW_SECONDS = 86_400
_MONTH_MICROS = HISTORY_DAYS * DAY_MICROS
#: A day number, or an array of them.
T = TypeVar("T", int, np.ndarray)


@dataclass(frozen=True)
class ConfirmedFrauds:
    """The frauds confirmed so far (fraud cases of real transactions: recorded by an analyst or by the
    feedback of labels, not seeded patterns): where and when each happened and when it became known."""

    account_nos: np.ndarray  # (frauds,) object
    merchant_ids: np.ndarray  # (frauds,) object; None without a merchant
    happened_micros: np.ndarray  # (frauds,) int64: the transaction's time
    known_micros: np.ndarray  # (frauds,) int64: the case's recorded_at

    @classmethod
    def none(cls) -> ConfirmedFrauds:
        empty = np.empty(0, dtype=object)
        return cls(empty, empty, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.account_nos)


@dataclass(frozen=True)
class MerchantTotals:
    """How many transactions each merchant had on each UTC day (``merchant_day_total`` rows): the
    denominators of the merchants' confirmed-fraud shares."""

    merchant_ids: np.ndarray  # (rows,) object
    days: np.ndarray  # (rows,) int64: days since 1970-01-01
    transactions: np.ndarray  # (rows,) int64

    @classmethod
    def none(cls) -> MerchantTotals:
        return cls(np.empty(0, dtype=object), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.merchant_ids)


def fraud_share_window(day: T, window_days: int, feedback_delay_days: int) -> tuple[T, T]:
    """The first and last day (both included; day numbers since the epoch, or arrays of them) of a fraud
    share's window of ``window_days`` for a transaction on ``day``: it ends the day before ``day`` less
    the feedback delay."""
    last = day - feedback_delay_days - 1
    return last - window_days + 1, last


def fraud_share_days(day: int, feedback_delay_days: int) -> tuple[int, int]:
    """Every day whose merchant totals the fraud shares of a transaction on ``day`` read (the longest window)."""
    return fraud_share_window(day, max(FRAUD_SHARE_FEATURES.values()), feedback_delay_days)


def share_days_to_read(
    day: int, fraud_days: Sequence[int], feedback_delay_days: int, newest: int | None = None
) -> tuple[int, int] | None:
    """The days of a merchant's totals the fraud shares of its transaction on ``day`` read (every day of
    :func:`fraud_share_days`, none after ``newest``), or None when none of the merchant's confirmed frauds
    (``fraud_days``: their day numbers, sorted) happened in them: every share is 0 then. All the days or
    none: a share's denominator is the sum over all of them."""
    first, last = fraud_share_days(day, feedback_delay_days)
    last = last if newest is None else min(last, newest)
    position = bisect_left(fraud_days, first)
    return (first, last) if position < len(fraud_days) and fraud_days[position] <= last else None


def _same_key_runs(keys: np.ndarray, of: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each key of ``keys`` also in ``of`` (None matches nothing): the positions of its rows in ``keys``
    and in ``of``."""
    codes = pd.factorize(np.concatenate([np.asarray(keys, dtype=object), of]), use_na_sentinel=True)[0]
    own, theirs = codes[: len(keys)], codes[len(keys) :]
    own_order, their_order = np.argsort(own, kind="stable"), np.argsort(theirs, kind="stable")
    own_sorted, their_sorted = own[own_order], theirs[their_order]
    for code in np.intersect1d(own_sorted[own_sorted >= 0], their_sorted):
        rows = own_order[np.searchsorted(own_sorted, code) : np.searchsorted(own_sorted, code, side="right")]
        found = their_order[np.searchsorted(their_sorted, code) : np.searchsorted(their_sorted, code, side="right")]
        yield rows, found


def confirmed_frauds_by(keys: np.ndarray, at_micros: np.ndarray, frauds: ConfirmedFrauds, of: np.ndarray) -> np.ndarray:
    """For each transaction (its key in ``keys``: an account or merchant id; its time ``at_micros``), the
    confirmed frauds with the same key in ``of`` (``frauds.account_nos`` or ``frauds.merchant_ids``) known by
    its time (recorded at or before it) that happened in the 30 days before it: a label counts only once it
    has come back, which is how the feedback delay enters."""
    counts = np.zeros(len(keys), dtype=np.float64)
    if not len(frauds) or not len(keys):
        return counts
    for rows, cases in _same_key_runs(keys, of):
        at = at_micros[rows][:, None]
        known = frauds.known_micros[cases][None, :] <= at
        happened = frauds.happened_micros[cases][None, :]
        recent = (happened >= at - _MONTH_MICROS) & (happened <= at)
        counts[rows] = (known & recent).sum(axis=1)
    return counts


def merchant_fraud_shares(
    merchants: np.ndarray,
    at_micros: np.ndarray,
    frauds: ConfirmedFrauds,
    totals: MerchantTotals,
    feedback_delay_days: int,
) -> np.ndarray:
    """Each transaction's merchant's confirmed-fraud share over each window of :data:`FRAUD_SHARE_FEATURES`
    (columns in that order): of the merchant's transactions on the window's days, the share that are
    confirmed frauds known by the transaction's time. A window of ``w`` days ends the day before the
    transaction's day less ``feedback_delay_days`` (:func:`fraud_share_window`: days ``d - delay - w`` to
    ``d - delay - 1``). 0 without a merchant or a confirmed fraud in the window, and where the totals count
    fewer transactions than frauds. ``totals``: the merchants' transactions per day (:class:`MerchantTotals`,
    at least the days of :func:`fraud_share_days`)."""
    shares = np.zeros((len(merchants), len(FRAUD_SHARE_FEATURES)), dtype=np.float64)
    if not len(frauds) or not len(merchants):
        return shares
    day = at_micros // DAY_MICROS
    fraud_day = frauds.happened_micros // DAY_MICROS
    per_merchant = {
        merchant: (totals.days[rows], totals.transactions[rows])
        for merchant, rows in pd.Series(np.arange(len(totals))).groupby(totals.merchant_ids).indices.items()
    }
    for rows, cases in _same_key_runs(merchants, frauds.merchant_ids):
        merchant = frauds.merchant_ids[cases[0]]
        known = frauds.known_micros[cases][None, :] <= at_micros[rows][:, None]
        days, counts = per_merchant.get(merchant, (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)))
        for column, window in enumerate(FRAUD_SHARE_FEATURES.values()):
            first, last = fraud_share_window(day[rows], window, feedback_delay_days)
            in_window = (fraud_day[cases][None, :] >= first[:, None]) & (fraud_day[cases][None, :] <= last[:, None])
            fraud_count = (known & in_window).sum(axis=1)
            counted = ((days[None, :] >= first[:, None]) & (days[None, :] <= last[:, None])) @ counts
            # Fewer transactions than frauds means the totals lack some (a day counted before all of its
            # transactions were stored): no share rather than a made-up one.
            shares[rows, column] = np.divide(
                fraud_count, counted, out=np.zeros(len(rows)), where=(fraud_count > 0) & (counted >= fraud_count)
            )
    return shares


def risk_features(
    transactions: pd.DataFrame,
    context: pd.DataFrame,
    similarity: np.ndarray,
    frauds: ConfirmedFrauds,
    totals: MerchantTotals,
    feedback_delay_days: int,
) -> np.ndarray:
    """The risk features of a frame's ``transactions`` (:data:`~fraudshop.model.features.TRANSACTION_INPUTS`)
    with their ``context`` (:data:`~fraudshop.model.features.CONTEXT_COLUMNS`): :func:`risk_features_of`."""
    return risk_features_of(
        Transactions.of_frame(transactions),
        context[list(CONTEXT_COLUMNS)].to_numpy(dtype=float),
        similarity,
        frauds,
        totals,
        feedback_delay_days,
    )


def risk_features_of(
    transactions: Transactions,
    context: np.ndarray,
    similarity: np.ndarray,
    frauds: ConfirmedFrauds,
    totals: MerchantTotals,
    feedback_delay_days: int,
) -> np.ndarray:
    """The :data:`RISK_FEATURES` (float32, one row per transaction) of ``transactions``, from their
    ``context`` (:data:`~fraudshop.model.features.CONTEXT_COLUMNS`, columns in that order), their
    ``similarity`` scores, the confirmed ``frauds`` and their merchants' daily ``totals`` (the fraud shares'
    windows end ``feedback_delay_days`` before each transaction's day). Missing values become the neutral
    value documented for each (no NaN)."""
    amount = np.maximum(transactions.amount, 0)
    at = transactions.at
    seconds_of_day = utc_seconds_of_day(at)
    weekday = utc_weekday(at)
    usual = np.maximum(context[:, CONTEXT_INDEX["usual_amount"]], 0)
    since_change = context[:, CONTEXT_INDEX["seconds_since_change"]]
    is_new = context[:, CONTEXT_INDEX["merchant_is_new"]]

    def log_of(column: str) -> np.ndarray:
        return np.asarray(np.nan_to_num(np.log1p(np.maximum(context[:, CONTEXT_INDEX[column]], 0))))

    columns = {
        "similarity": np.nan_to_num(similarity.astype(float)),
        "amount": amount,
        "log_amount": np.log1p(amount),
        "amount_vs_usual": np.nan_to_num(np.log1p(amount) - np.log1p(usual)),  # 0 without history
        "log_transactions_last_day": log_of("transactions_last_day"),
        "log_transactions_last_week": log_of("transactions_last_week"),
        "log_transactions_last_month": log_of("transactions_last_month"),
        "log_mean_amount_last_day": log_of("mean_amount_last_day"),
        "log_mean_amount_last_week": log_of("mean_amount_last_week"),
        "log_mean_amount_last_month": log_of("mean_amount_last_month"),
        "profile_change_window": (since_change <= PROFILE_CHANGE_WINDOW_SECONDS).astype(float),  # NaN: False
        "merchant_is_new": np.where(np.isnan(is_new), 0.5, is_new),
        "night": (seconds_of_day < 6 * 3_600).astype(float),  # 00:00-05:59 UTC
        "weekend": (weekday >= 5).astype(float),
        "log_merchant_frauds_last_month": np.log1p(
            confirmed_frauds_by(transactions.merchant_id, at, frauds, frauds.merchant_ids)
        ),
        "log_account_frauds_last_month": np.log1p(
            confirmed_frauds_by(transactions.account_no, at, frauds, frauds.account_nos)
        ),
    }
    shares = merchant_fraud_shares(transactions.merchant_id, at, frauds, totals, feedback_delay_days)
    columns.update({name: shares[:, column] for column, name in enumerate(FRAUD_SHARE_FEATURES)})
    return np.column_stack([columns[name] for name in RISK_FEATURES]).astype(np.float32)


@dataclass(frozen=True)
class RiskModel:
    """A trained logistic regression over :data:`RISK_FEATURES` of ``feature_set``: a ``risk_model`` row."""

    version: str
    feature_set: str
    features: tuple[str, ...]
    intercept: float
    coefficients: tuple[float, ...]
    trained_at: datetime
    as_of: datetime  # labels recorded by then were used; transactions before it less the feedback delay
    training_rows: int
    training_frauds: int
    training_auc: float
    regularization: float

    def __post_init__(self) -> None:
        if len(self.coefficients) != len(self.features):
            raise ValueError(f"{len(self.coefficients)} coefficients for {len(self.features)} features")

    def applies_to(self, feature_set: str) -> bool:
        return feature_set == self.feature_set and self.features == RISK_FEATURES

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """The fraud probability of each row of ``features`` (float32, as stored): the logistic of the
        intercept plus each coefficient times its feature, summed column by column in float64, so a row's
        probability is the same to the bit whatever the batch it is computed in (a matrix product's sums
        depend on the batch's shape) and can be recomputed from the stored row."""
        logit = np.full(len(features), self.intercept, dtype=np.float64)
        for column, coefficient in enumerate(self.coefficients):
            logit += coefficient * features[:, column].astype(np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)


def model_version(trained_at: datetime) -> str:
    """A model's version: its feature set and training time (UTC, to the second)."""
    return f"{RISK_FEATURE_SET}@{trained_at:%Y%m%dT%H%M%SZ}"
