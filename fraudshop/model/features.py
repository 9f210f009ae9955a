"""The transaction vector: what fraudshop compares with known fraud cases (``fraud_case``), by cosine
similarity. Deterministic and documented, it needs no model download: numpy over a transaction, its
account's history and its account's profile changes. The same functions serve the stream (applied by
Spark to each account's group, :mod:`fraudshop.transforms.features`) and a caller holding one
transaction, so both give the same vector for the same transaction.

A transaction's history is as for the rules: its account's known transactions before it in event time,
``(tranpostdt, tranid)`` order, over the :data:`HISTORY_DAYS` before it. ``docs/similarity.md`` gives
every component of the vector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from fraudshop.model.records import CHANNELS

#: How far back a transaction's history reaches: its usual amounts, whether its merchant is new and
#: its velocity are measured over it, and a profile change older than it no longer counts.
HISTORY_DAYS = 30
#: The columns of a transaction the vector reads (``tranpostdt`` as an aware or naive-UTC timestamp).
TRANSACTION_INPUTS: tuple[str, ...] = (
    "account_no",
    "tranpostdt",
    "tranid",
    "amount",
    "merchant_id",
    "merchant_category",
    "channel",
)
#: The columns of an account's events: its stored transactions (``event`` = "transaction") and its
#: profile changes (``event`` = "change", at ``tranpostdt`` = the change's ``last_updated``).
EVENT_COLUMNS: tuple[str, ...] = ("account_no", "tranpostdt", "tranid", "amount", "merchant_id", "event")
TRANSACTION_EVENT, CHANGE_EVENT = "transaction", "change"
#: What the history says about a transaction, computed by :func:`transaction_context`.
CONTEXT_COLUMNS: tuple[str, ...] = (
    "usual_amount",  # the median of the history's amounts; NaN without history
    "merchant_is_new",  # 1.0 when the history holds no transaction at its merchant, else 0.0; NaN without merchant
    "seconds_since_change",  # since the account's latest profile change at or before it; NaN without one
    "transactions_last_hour",  # the history's transactions in the hour before it
    "transactions_last_day",  # and in the 24 hours before it
    "transactions_last_week",  # and in the 7 days before it
    "transactions_last_month",  # and in the HISTORY_DAYS (30) before it
    "mean_amount_last_day",  # the mean amount of the history's transactions in the 24 hours before it; NaN without
    "mean_amount_last_week",  # in the 7 days before it
    "mean_amount_last_month",  # in the HISTORY_DAYS before it
)
CONTEXT_INDEX = {name: column for column, name in enumerate(CONTEXT_COLUMNS)}
_SECONDS_PER_DAY = 86_400
#: Microseconds in a day: a UTC day's number is a time's microseconds since the epoch divided by it.
DAY_MICROS = _SECONDS_PER_DAY * 1_000_000
_HOUR_MICROS = 3_600 * 1_000_000
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
#: Velocity counts saturate at these: transactions in the last hour, in the last day.
HOUR_LIMIT, DAY_LIMIT = 20, 100
#: The width of a hashed block: an id's pseudo-random unit vector.
HASHED_WIDTH = 8


@dataclass(frozen=True)
class Block:
    """A run of the vector's components: its name, its width and the weight its values are scaled by
    before the whole vector is L2-normalised (a block's weight is its share of the cosine)."""

    name: str
    width: int
    weight: float


#: The vector, block by block (``docs/similarity.md`` says how each is computed).
BLOCKS: tuple[Block, ...] = (
    Block("amount", 1, 1.0),  # log1p(amount) / log1p(10,000), at most 1.5
    Block("amount_vs_usual", 1, 1.0),  # tanh(log((1 + amount) / (1 + usual))); 0 without history
    Block("hour_of_day", 2, 0.5),  # sin, cos of the UTC hour
    Block("day_of_week", 2, 0.5),  # sin, cos of the UTC weekday
    Block("merchant_category", HASHED_WIDTH, 0.5),  # the MCC's hashed unit vector; 0 without one
    Block("channel", 4, 0.5),  # one-hot: pos, online, atm, unknown
    Block("merchant_is_new", 1, 1.0),  # 1 new, 0 seen, 0.5 without merchant
    Block("profile_change", 1, 1.0),  # exp(-hours since the latest change / 24); 0 without one
    Block("velocity", 2, 1.0),  # log1p(min(count, limit)) / log1p(limit): the last hour (limit 20), day (100)
    Block("merchant", HASHED_WIDTH, 0.5),  # the merchant id's hashed unit vector; 0 without one
)
VECTOR_DIMENSIONS = sum(block.width for block in BLOCKS)


@dataclass(frozen=True)
class Transactions:
    """:data:`TRANSACTION_INPUTS` as arrays, one row per transaction: what the vector and the risk features
    read. ``at`` is ``tranpostdt`` in microseconds since the epoch (UTC); ids, categories and channels are
    objects (None or NaN when missing)."""

    account_no: np.ndarray
    at: np.ndarray
    tranid: np.ndarray
    amount: np.ndarray
    merchant_id: np.ndarray
    merchant_category: np.ndarray
    channel: np.ndarray

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> Transactions:
        """A frame's :data:`TRANSACTION_INPUTS` (``tranpostdt`` aware or naive-UTC timestamps)."""
        return cls(
            frame["account_no"].to_numpy(dtype=object),
            micros_since_epoch(frame["tranpostdt"]),
            frame["tranid"].to_numpy(dtype=object),
            frame["amount"].to_numpy(dtype=float),
            frame["merchant_id"].to_numpy(dtype=object),
            frame["merchant_category"].to_numpy(dtype=object),
            frame["channel"].to_numpy(dtype=object),
        )

    @classmethod
    def of_records(cls, records: Sequence[Mapping[str, object]]) -> Transactions:
        """Records whose ``tranpostdt`` is an aware datetime, without pandas: a caller's few transactions."""

        def column(name: str) -> np.ndarray:
            return np.array([record.get(name) for record in records], dtype=object)

        return cls(
            column("account_no"),
            np.array([micros_of(record["tranpostdt"]) for record in records], dtype=np.int64),  # type: ignore[arg-type]
            column("tranid"),
            np.array([record["amount"] for record in records], dtype=float),
            column("merchant_id"),
            column("merchant_category"),
            column("channel"),
        )


@dataclass(frozen=True)
class KnownTransactions:
    """The accounts' known transactions and profile changes, as :func:`history_context` reads them:
    accounts and merchants as integer codes (a merchant's -1 when missing), times in microseconds since the
    epoch."""

    account: np.ndarray  # (known,) int64
    at: np.ndarray  # (known,) int64
    tranid: np.ndarray  # (known,) str
    amount: np.ndarray  # (known,) float
    merchant: np.ndarray  # (known,) int64
    change_account: np.ndarray  # (changes,) int64, the accounts' codes
    change_at: np.ndarray  # (changes,) int64


def transaction_context(transactions: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """:data:`CONTEXT_COLUMNS` of each row of ``transactions`` (:data:`TRANSACTION_INPUTS`), in their
    order, from ``events`` (:data:`EVENT_COLUMNS`): the accounts' stored transactions and profile changes.
    ``transactions`` join their accounts' history too, each key once, so a transaction's history holds the
    ones before it in the same batch. The stream's batches; :func:`history_context` computes it."""
    if not len(transactions):
        return pd.DataFrame(np.empty((0, len(CONTEXT_COLUMNS))), columns=list(CONTEXT_COLUMNS))
    is_change = (events["event"] == CHANGE_EVENT).to_numpy()
    stored = events[~is_change & events["amount"].notna().to_numpy()]  # a row the job only scored has no amount
    # The batch's own rows first: a key stored too (a replay's partial writes) is the batch's record.
    parts = [frame[list(EVENT_COLUMNS[:5])] for frame in (transactions, stored) if len(frame)]
    known = pd.concat(parts, ignore_index=True).drop_duplicates(
        subset=["account_no", "tranpostdt", "tranid"], ignore_index=True
    )
    changes = events[is_change]
    _, account_codes = np.unique(
        np.concatenate([known["account_no"].to_numpy(dtype=object), changes["account_no"].to_numpy(dtype=object)]),
        return_inverse=True,
    )
    own = pd.MultiIndex.from_frame(known[["account_no", "tranpostdt", "tranid"]]).get_indexer(
        pd.MultiIndex.from_frame(transactions[["account_no", "tranpostdt", "tranid"]])
    )
    arrays = KnownTransactions(
        account_codes[: len(known)].astype(np.int64),
        micros_since_epoch(known["tranpostdt"]),
        known["tranid"].to_numpy(dtype=str),
        known["amount"].to_numpy(dtype=float),
        pd.factorize(known["merchant_id"], use_na_sentinel=True)[0].astype(np.int64),
        account_codes[len(known) :].astype(np.int64),
        micros_since_epoch(changes["tranpostdt"]),
    )
    return pd.DataFrame(history_context(arrays, own), columns=list(CONTEXT_COLUMNS), index=transactions.index)


def history_context(known: KnownTransactions, own: np.ndarray) -> np.ndarray:
    """:data:`CONTEXT_COLUMNS` (columns in that order) of the transactions at rows ``own`` of ``known``.

    Vectorised over accounts: every known transaction sorted by (account, time, tranid) on one integer
    key, a transaction's history is the run of rows before it back to its window's start (found by
    binary search), and its merchant is new unless the row before it in (account, merchant, time, tranid)
    order is at the same merchant within the window. The key ranks the times (every time and every
    window's edge among the distinct values), so it fits an int64 whatever the times span. numpy only: a
    batch of one costs tens of microseconds, not pandas' milliseconds."""
    known_account, known_at = known.account, known.at
    change_account, change_at = known.change_account, known.change_at
    window, hour, day = HISTORY_DAYS * DAY_MICROS, _HOUR_MICROS, DAY_MICROS
    own_at = known_at[own]
    times = np.unique(np.concatenate([known_at, change_at, own_at - window, own_at - hour, own_at - day]))

    def key(account: np.ndarray, at: np.ndarray) -> np.ndarray:
        return np.asarray(account.astype(np.int64) * len(times) + np.searchsorted(times, at), dtype=np.int64)

    # Known transactions by (account, time, tranid), and where each own transaction sits among them.
    order = np.lexsort((known.tranid, known_at, known_account))
    sorted_key = key(known_account, known_at)[order]
    rank = np.empty(len(known_at), dtype=np.int64)
    rank[order] = np.arange(len(known_at))
    at_rank = rank[own]
    own_account = known_account[own]

    def history_start(before: int) -> np.ndarray:
        """Where each transaction's history ``before`` microseconds back starts (its edge included)."""
        return np.searchsorted(sorted_key, key(own_account, own_at - before), side="left")

    start = history_start(window)
    amounts = known.amount[order]
    usual = np.array([np.median(amounts[a:b]) if b > a else np.nan for a, b in zip(start, at_rank, strict=True)])
    last_hour = at_rank - history_start(hour)
    day_start, week_start = history_start(day), history_start(7 * day)
    # Sums over a run of the sorted rows: differences of the running sum.
    running = np.concatenate([[0.0], np.cumsum(np.nan_to_num(amounts))])

    def mean_amount(first: np.ndarray) -> np.ndarray:
        count = at_rank - first
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, (running[at_rank] - running[first]) / count, np.nan)

    # The same rows by (account, merchant, time, tranid): the row before a transaction is its account's
    # latest earlier one at the same merchant, if any.
    merchants = known.merchant
    by_merchant = np.lexsort((known.tranid, known_at, merchants, known_account))
    merchant_rank = np.empty(len(known_at), dtype=np.int64)
    merchant_rank[by_merchant] = np.arange(len(known_at))
    previous = by_merchant[np.maximum(merchant_rank[own] - 1, 0)]
    seen = (
        (merchant_rank[own] > 0)
        & (known_account[previous] == own_account)
        & (merchants[previous] == merchants[own])
        & (known_at[previous] >= own_at - window)
    )
    is_new = np.where(merchants[own] < 0, np.nan, np.where(seen, 0.0, 1.0))
    # The latest change of the account at or before each transaction, in its window.
    change_order = np.lexsort((change_at, change_account))
    change_key = key(change_account, change_at)[change_order]
    latest = np.maximum(np.searchsorted(change_key, key(own_account, own_at), side="right") - 1, 0)
    if len(change_key):
        latest_account, latest_at = change_account[change_order][latest], change_at[change_order][latest]
        has_change = (latest_account == own_account) & (latest_at <= own_at) & (latest_at >= own_at - window)
        since_change = np.where(has_change, (own_at - latest_at) / 1_000_000, np.nan)
    else:
        since_change = np.full(len(own_at), np.nan)
    return np.column_stack(
        [
            usual,
            is_new,
            since_change,
            last_hour,
            at_rank - day_start,
            at_rank - week_start,
            at_rank - start,
            mean_amount(day_start),
            mean_amount(week_start),
            mean_amount(start),
        ]
    ).astype(float)


def micros_since_epoch(times: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (UTC) of aware or naive-UTC timestamps."""
    series = pd.to_datetime(times)
    if series.dt.tz is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[us]").astype(np.int64)


def micros_of(at: datetime) -> int:
    """Microseconds since the epoch of a datetime (naive = UTC), exactly as :func:`micros_since_epoch`."""
    return ((at if at.tzinfo else at.replace(tzinfo=UTC)) - _EPOCH_UTC) // _ONE_MICROSECOND


def day_number(day: date) -> int:
    """A UTC day's number: days since 1970-01-01 (a time's is its microseconds // :data:`DAY_MICROS`)."""
    return (day - _EPOCH_UTC.date()).days


def day_of_number(number: int) -> date:
    """The UTC day of a day number (:func:`day_number`)."""
    return _EPOCH_UTC.date() + timedelta(days=number)


def utc_seconds_of_day(at_micros: np.ndarray) -> np.ndarray:
    """The seconds since UTC midnight of times in microseconds since the epoch."""
    return np.asarray(at_micros // 1_000_000 % _SECONDS_PER_DAY)


def utc_weekday(at_micros: np.ndarray) -> np.ndarray:
    """The UTC weekday (Monday 0) of times in microseconds since the epoch: 1970-01-01 was a Thursday."""
    return np.asarray((at_micros // DAY_MICROS + 3) % 7)


def transaction_vectors(transactions: pd.DataFrame, context: pd.DataFrame) -> np.ndarray:
    """The vectors of a frame's ``transactions`` (:data:`TRANSACTION_INPUTS`) with their ``context``
    (:data:`CONTEXT_COLUMNS`): :func:`vectors_of_arrays`."""
    return vectors_of_arrays(Transactions.of_frame(transactions), context[list(CONTEXT_COLUMNS)].to_numpy(dtype=float))


def vectors_of_arrays(transactions: Transactions, context: np.ndarray) -> np.ndarray:
    """The L2-normalised vectors (float32, one row each, :data:`VECTOR_DIMENSIONS` wide) of
    ``transactions`` with their ``context`` (:data:`CONTEXT_COLUMNS`, columns in that order)."""
    amount, at = transactions.amount, transactions.at
    hour = utc_seconds_of_day(at) / 3_600
    weekday = utc_weekday(at)
    usual = context[:, CONTEXT_INDEX["usual_amount"]]
    is_new = context[:, CONTEXT_INDEX["merchant_is_new"]]
    since_change = context[:, CONTEXT_INDEX["seconds_since_change"]]
    blocks: Mapping[str, np.ndarray] = {
        "amount": np.minimum(np.log1p(np.maximum(amount, 0)) / np.log1p(10_000), 1.5)[:, None],
        # Refunds in the history (negative amounts) could make the usual amount negative: floored at 0.
        "amount_vs_usual": np.nan_to_num(np.tanh(np.log((1 + np.maximum(amount, 0)) / (1 + np.maximum(usual, 0)))))[
            :, None
        ],
        "hour_of_day": _circle(hour / 24),
        "day_of_week": _circle(weekday / 7),
        "merchant_category": _hashed(transactions.merchant_category, "mcc"),
        "channel": _channel(transactions.channel),
        "merchant_is_new": np.where(np.isnan(is_new), 0.5, is_new)[:, None],
        "profile_change": np.nan_to_num(np.exp(-since_change / _SECONDS_PER_DAY))[:, None],
        "velocity": np.column_stack(
            [
                _saturated(context[:, CONTEXT_INDEX["transactions_last_hour"]], HOUR_LIMIT),
                _saturated(context[:, CONTEXT_INDEX["transactions_last_day"]], DAY_LIMIT),
            ]
        ),
        "merchant": _hashed(transactions.merchant_id, "merchant"),
    }
    vectors = np.hstack([blocks[block.name] * block.weight for block in BLOCKS])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def _saturated(counts: np.ndarray, limit: int) -> np.ndarray:
    """A count on a log scale, 1 from ``limit`` up: past it, more is no more telling, and an unbounded
    block would outweigh the rest of the vector (a card transacting every second is all velocity)."""
    return np.asarray(np.log1p(np.minimum(counts, limit)) / np.log1p(limit), dtype=float)


def _circle(turns: np.ndarray) -> np.ndarray:
    return np.column_stack([np.sin(2 * np.pi * turns), np.cos(2 * np.pi * turns)])


def _channel(channels: Iterable[object]) -> np.ndarray:
    known = (*CHANNELS, None)
    index = [known.index(value) if value in CHANNELS else len(CHANNELS) for value in channels]
    return np.eye(len(known))[index] if len(index) else np.zeros((0, len(known)))


def _hashed(values: Sequence[object] | np.ndarray, salt: str) -> np.ndarray:
    """Each value's pseudo-random unit vector, the same for the same value in every process (seeded by
    its BLAKE2b digest, never by Python's salted hash); zeros for a missing value."""
    return np.array([_unit(salt, value) for value in values], dtype=float).reshape(len(values), HASHED_WIDTH)


@lru_cache(maxsize=65_536)
def _unit(salt: str, value: object) -> tuple[float, ...]:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == "":
        return (0.0,) * HASHED_WIDTH
    digest = hashlib.blake2b(f"{salt}:{value}".encode(), digest_size=8).digest()
    direction = np.random.default_rng(int.from_bytes(digest, "big")).standard_normal(HASHED_WIDTH)
    return tuple(float(x) for x in direction / np.linalg.norm(direction))


def transactions_frame(transactions: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """:data:`TRANSACTION_INPUTS` of records as a producer sends them (``tranpostdt`` an ISO-8601 text
    or an aware datetime; absent optional fields are missing)."""
    frame = pd.DataFrame([{name: record.get(name) for name in TRANSACTION_INPUTS} for record in transactions])
    frame = frame.reindex(columns=list(TRANSACTION_INPUTS))
    frame["tranpostdt"] = pd.to_datetime(frame["tranpostdt"], utc=True, format="ISO8601")
    frame["amount"] = frame["amount"].astype(float)
    return frame


def events_frame(transactions: pd.DataFrame, changes: Iterable[tuple[str, datetime]] = ()) -> pd.DataFrame:
    """:data:`EVENT_COLUMNS` of stored ``transactions`` (a :func:`transactions_frame`) and of profile
    changes, as (account_no, last_updated) pairs."""
    stored = transactions[list(EVENT_COLUMNS[:5])].assign(event=TRANSACTION_EVENT)
    changed = pd.DataFrame(
        [(account, at, "", np.nan, None, CHANGE_EVENT) for account, at in changes], columns=list(EVENT_COLUMNS)
    )
    if not len(changed):
        return stored.reset_index(drop=True)
    changed["tranpostdt"] = pd.to_datetime(changed["tranpostdt"], utc=True)
    return pd.concat([stored, changed], ignore_index=True)


def vectors_of(transactions: pd.DataFrame, events: pd.DataFrame) -> np.ndarray:
    """The vectors of ``transactions`` against their accounts' ``events``: the stream's and a single
    caller's one path."""
    return transaction_vectors(transactions, transaction_context(transactions, events))
