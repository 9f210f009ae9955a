"""The fraud team's desk, pure: an alert is a flagged transaction with every signal that flagged it; an
analyst's review confirms it, dismisses it or notes it; the queue is the alerts no confirm or dismiss has
closed; the overview counts them. The reads and writes are ``fraudshop.io.cassandra.desk``'s, the pages
``fraudshop.service.desk``'s."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from fraudshop.model.cases import SIMILARITY_KIND, CaseLabel, CaseSource, FraudCase, transaction_case_id
from fraudshop.model.changes import as_utc, to_cassandra_time
from fraudshop.model.rules import RuleKind

#: The profile-change rule's signal: a ``cust_fraud`` row.
PROFILE_CHANGE_SIGNAL = "profile_change"
#: Every signal an alert can carry, in the order the desk lists them: the profile-change rule, each rule
#: kind (``rule_hit``), the similarity to known fraud (``rule_hit`` too, under its own kind).
SIGNALS: tuple[str, ...] = (PROFILE_CHANGE_SIGNAL, *(kind.value for kind in RuleKind), SIMILARITY_KIND)


class ReviewAction(StrEnum):
    CONFIRM = "confirm"  # fraud: a fraud_case of the transaction
    DISMISS = "dismiss"  # a false positive: a genuine case, and the alert leaves the queue
    NOTE = "note"  # a remark; the alert stays as it is


class AlertStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


_STATUS_OF_ACTION = {ReviewAction.CONFIRM: AlertStatus.CONFIRMED, ReviewAction.DISMISS: AlertStatus.DISMISSED}


@dataclass(frozen=True, order=True)
class TransactionKey:
    """A transaction's key in ``transaction``, times at Cassandra's millisecond precision."""

    account_no: str
    tranpostdt: datetime
    tranid: str

    @classmethod
    def of(cls, account_no: str, tranpostdt: datetime, tranid: str) -> TransactionKey:
        return cls(account_no, to_cassandra_time(as_utc(tranpostdt)), tranid)

    @property
    def day(self) -> date:
        """The UTC day of the transaction: the partition of its alerts and reviews."""
        return self.tranpostdt.astimezone(UTC).date()


@dataclass(frozen=True)
class Flag:
    """One signal's evidence that a transaction is suspicious."""

    signal: str
    reason: str
    detected_at: datetime | None


@dataclass(frozen=True)
class Alert:
    """A flagged transaction and every signal that flagged it."""

    key: TransactionKey
    customer_id: str | None
    merchant_id: str | None
    amount: float | None
    flags: tuple[Flag, ...]

    @property
    def signals(self) -> tuple[str, ...]:
        present = {flag.signal for flag in self.flags}
        return tuple(signal for signal in SIGNALS if signal in present) + tuple(sorted(present - set(SIGNALS)))

    @property
    def detected_at(self) -> datetime | None:
        """When the first signal flagged it: the alert's age counts from then."""
        times = [flag.detected_at for flag in self.flags if flag.detected_at is not None]
        return min(times) if times else None


def profile_change_reason(row: Mapping[str, Any]) -> str:
    """A ``cust_fraud`` row's evidence as an analyst reads it."""
    changed = as_utc(row["last_updated"]).strftime("%Y-%m-%d %H:%M:%S UTC")
    also = row.get("qualifying_changes") or 1
    more = f" ({also} changes in the window)" if also > 1 else ""
    return f"{row['change_type']} changed on the profile at {changed}{more}"


def alerts_of(profile_rows: Iterable[Mapping[str, Any]], hit_rows: Iterable[Mapping[str, Any]]) -> list[Alert]:
    """One alert per transaction from ``cust_fraud`` rows and ``rule_hit`` rows, newest first."""
    found: dict[TransactionKey, dict[str, Any]] = {}

    def entry(row: Mapping[str, Any]) -> dict[str, Any]:
        key = TransactionKey.of(row["account_no"], row["tranpostdt"], row["tranid"])
        return found.setdefault(key, {"customer_id": None, "merchant_id": None, "amount": None, "flags": []})

    for row in profile_rows:
        alert = entry(row)
        alert["customer_id"] = alert["customer_id"] or row["customer_id"]
        alert["amount"] = row["amount"] if alert["amount"] is None else alert["amount"]
        alert["flags"].append(Flag(PROFILE_CHANGE_SIGNAL, profile_change_reason(row), _time(row.get("detected_at"))))
    for row in hit_rows:
        alert = entry(row)
        alert["customer_id"] = alert["customer_id"] or row["customer_id"]
        alert["merchant_id"] = alert["merchant_id"] or row.get("merchant_id")
        alert["amount"] = row["amount"] if alert["amount"] is None else alert["amount"]
        alert["flags"].append(Flag(row["kind"], row["reason"], _time(row.get("detected_at"))))
    alerts = [
        Alert(key, values["customer_id"], values["merchant_id"], values["amount"], tuple(values["flags"]))
        for key, values in found.items()
    ]
    return sorted(alerts, key=lambda alert: (-alert.key.tranpostdt.timestamp(), alert.key.account_no, alert.key.tranid))


def _time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


@dataclass(frozen=True)
class Review:
    """An ``alert_review`` row: one analyst's action on an alert."""

    key: TransactionKey
    reviewed_at: datetime
    review_id: uuid.UUID
    action: ReviewAction
    analyst: str
    note: str | None
    customer_id: str | None
    #: The alert's signals when it was reviewed: the overview's precision counts them.
    signals: tuple[str, ...]

    @classmethod
    def now(
        cls, alert: Alert, action: ReviewAction, analyst: str, note: str | None, at: datetime | None = None
    ) -> Review:
        moment = to_cassandra_time(at or datetime.now(UTC))
        return cls(alert.key, moment, uuid.uuid4(), action, analyst, note or None, alert.customer_id, alert.signals)


def _decisive(reviews: Iterable[Review]) -> dict[TransactionKey, Review]:
    """Each alert's latest confirm or dismiss (a later one overrides: an analyst changed their mind)."""
    latest: dict[TransactionKey, Review] = {}
    for review in reviews:
        if review.action is ReviewAction.NOTE:
            continue
        held = latest.get(review.key)
        if held is None or (review.reviewed_at, str(review.review_id)) > (held.reviewed_at, str(held.review_id)):
            latest[review.key] = review
    return latest


def statuses_of(reviews: Iterable[Review]) -> dict[TransactionKey, AlertStatus]:
    """The status of each alert with a confirm or dismiss among ``reviews``; the others are open."""
    return {key: _STATUS_OF_ACTION[review.action] for key, review in _decisive(reviews).items()}


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows: every field None shows every open alert of the queue's days."""

    day: date | None = None
    signal: str | None = None
    customer_id: str | None = None
    merchant_id: str | None = None

    def admits(self, alert: Alert) -> bool:
        return (
            (self.day is None or alert.key.day == self.day)
            and (self.signal is None or self.signal in alert.signals)
            and (self.customer_id is None or alert.customer_id == self.customer_id)
            and (self.merchant_id is None or alert.merchant_id == self.merchant_id)
        )


def open_alerts(
    alerts: Iterable[Alert], statuses: Mapping[TransactionKey, AlertStatus], only: QueueFilter = QueueFilter()
) -> list[Alert]:
    """The alerts that no confirm or dismiss has closed and ``only`` admits, in the order given."""
    return [
        alert
        for alert in alerts
        if statuses.get(alert.key, AlertStatus.OPEN) is AlertStatus.OPEN and only.admits(alert)
    ]


@dataclass(frozen=True)
class QueuePage:
    alerts: list[Alert]
    number: int  # from 1
    pages: int
    total: int


def page_of(alerts: Sequence[Alert], number: int, size: int) -> QueuePage:
    """Page ``number`` (from 1; past the last, the last) of ``alerts``, ``size`` a page."""
    pages = max(1, -(-len(alerts) // size))
    number = min(max(1, number), pages)
    return QueuePage(list(alerts[(number - 1) * size : number * size]), number, pages, len(alerts))


@dataclass(frozen=True)
class SignalPrecision:
    signal: str
    confirmed: int
    reviewed: int

    @property
    def precision(self) -> float | None:
        """Confirmed / reviewed; None before the first review."""
        return self.confirmed / self.reviewed if self.reviewed else None


def precision_by_signal(reviews: Iterable[Review]) -> list[SignalPrecision]:
    """Each signal's precision so far: of the alerts it raised that an analyst confirmed or dismissed (the
    latest decision counts), the share confirmed. Every signal is listed, reviewed or not."""
    confirmed = dict.fromkeys(SIGNALS, 0)
    reviewed = dict.fromkeys(SIGNALS, 0)
    for review in _decisive(reviews).values():
        for signal in review.signals:
            reviewed[signal] = reviewed.get(signal, 0) + 1
            confirmed[signal] = confirmed.get(signal, 0) + (review.action is ReviewAction.CONFIRM)
    return [SignalPrecision(signal, confirmed.get(signal, 0), count) for signal, count in reviewed.items()]


def alerts_per_hour(alerts: Iterable[Alert], day: date) -> dict[str, list[int]]:
    """How many of ``alerts`` each signal raised in each UTC hour of ``day`` (by the transaction's time);
    only signals with at least one."""
    counts: dict[str, list[int]] = {}
    for alert in alerts:
        moment = alert.key.tranpostdt.astimezone(UTC)
        if moment.date() != day:
            continue
        for signal in alert.signals:
            counts.setdefault(signal, [0] * 24)[moment.hour] += 1
    return {signal: counts[signal] for signal in (*SIGNALS, *sorted(set(counts) - set(SIGNALS))) if signal in counts}


@dataclass(frozen=True)
class QueueAge:
    open: int
    oldest: timedelta | None
    median: timedelta | None


def queue_age(open_queue: Iterable[Alert], now: datetime) -> QueueAge:
    """How long the open alerts have waited since they were flagged: the oldest and the median."""
    alerts = list(open_queue)
    waits = sorted(now - alert.detected_at for alert in alerts if alert.detected_at is not None)
    if not waits:
        return QueueAge(len(alerts), None, None)
    return QueueAge(len(alerts), waits[-1], timedelta(seconds=statistics.median(w.total_seconds() for w in waits)))


@dataclass(frozen=True)
class ReviewedTransaction:
    """What a confirm or a dismiss needs of the transaction: the vector the job stored, where and how much."""

    key: TransactionKey
    vector: tuple[float, ...] | None
    merchant_id: str | None
    amount: float | None


#: The pattern a confirmed case is filed under when the analyst names none.
UNNAMED_PATTERN = "analyst_confirmed"


def case_of_review(review: Review, transaction: ReviewedTransaction, pattern: str | None = None) -> FraudCase | None:
    """The known case a confirm (fraud) or a dismiss (genuine) teaches the similarity signal and the risk
    model: the transaction's vector under its case id, so a case reviewed again rewrites the same row. None
    for a note, or when the job has not stored a vector for the transaction."""
    if review.action is ReviewAction.NOTE or transaction.vector is None:
        return None
    fraud = review.action is ReviewAction.CONFIRM
    key = transaction.key
    return FraudCase(
        case_id=transaction_case_id(key.account_no, key.tranpostdt, key.tranid),
        vector=tuple(transaction.vector),
        label=CaseLabel.FRAUD if fraud else CaseLabel.GENUINE,
        source=CaseSource.ANALYST,
        pattern=(pattern or UNNAMED_PATTERN) if fraud else None,
        recorded_at=review.reviewed_at,
        recorded_by=review.analyst,
        account_no=key.account_no,
        tranpostdt=key.tranpostdt,
        tranid=key.tranid,
        merchant_id=transaction.merchant_id,
        amount=transaction.amount,
    )
