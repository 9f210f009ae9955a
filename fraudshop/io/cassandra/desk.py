"""The desk's reads and writes: a day's alerts (``cust_fraud_by_day`` and ``rule_hit`` by its ``day`` index),
a day's reviews (``alert_review``), what an alert's page shows, and recording a review with the case it
teaches (``fraud_case``)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date
from typing import Any

from cachetools import LRUCache
from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import PreparedStatement

from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.reads import utc_row
from fraudshop.io.cassandra.schema import insert_statement, key_condition
from fraudshop.io.cassandra.session import prepared
from fraudshop.model.cases import FraudCase
from fraudshop.model.desk import (
    Alert,
    Review,
    ReviewAction,
    ReviewedTransaction,
    TransactionKey,
    alerts_of,
    case_of_review,
)
from fraudshop.model.tables import (
    ALERT_REVIEW_COLUMNS,
    CHANGE_COLUMNS,
    CUST_FRAUD_COLUMNS,
    RULE_HIT_COLUMNS,
    SCORE_COLUMNS,
    TRANSACTION_COLUMNS,
    TRANSACTION_KEY,
)

#: How many transactions' merchants a desk keeps (about 200 bytes each).
MERCHANTS_KEPT = 200_000


#: What an alert's page reads of its transaction: the row as the job wrote it, scores included.
SHOWN_TRANSACTION_COLUMNS: tuple[str, ...] = (*TRANSACTION_COLUMNS, *SCORE_COLUMNS)


class DeskStore:
    """The desk's tables of ``keyspace``. Every statement is prepared once per session."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._keyspace = keyspace
        self.cases = CaseStore(session, keyspace)
        self._merchants: LRUCache[TransactionKey, str | None] = LRUCache(MERCHANTS_KEPT)
        self._merchants_lock = threading.Lock()

    def _statement(self, cql: str) -> PreparedStatement:
        return prepared(self._session, cql, ConsistencyLevel.LOCAL_QUORUM)

    def _rows(self, cql: str, values: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [utc_row(row) for row in self._session.execute(self._statement(cql), values)]

    def alerts_of_day(self, day: date) -> list[Alert]:
        """Every alert on a transaction of the UTC ``day``, newest first: its profile-change alerts and its
        rule hits (the similarity signal's included). A profile-change alert without a hit gets its merchant
        from the transaction row."""
        keyspace = self._keyspace
        flagged = self._rows(
            f"SELECT {', '.join(CUST_FRAUD_COLUMNS)} FROM {keyspace}.cust_fraud_by_day WHERE day = ?", (day,)
        )
        # Through the SAI index rule_hit_day (the API refuses to start on a keyspace without it: older_schema).
        hits = self._rows(f"SELECT {', '.join(RULE_HIT_COLUMNS)} FROM {keyspace}.rule_hit WHERE day = ?", (day,))
        alerts = alerts_of(flagged, hits)
        without_merchant = [alert.key for alert in alerts if alert.merchant_id is None]
        merchants = self._merchants_of(without_merchant)
        return [
            alert if alert.merchant_id is not None else _with_merchant(alert, merchants.get(alert.key))
            for alert in alerts
        ]

    def _merchants_of(self, keys: Iterable[TransactionKey]) -> dict[TransactionKey, str | None]:
        """Each transaction's merchant: read once, then kept (a transaction's merchant never changes; a replay
        rewrites the same value), so the queue's refreshes read only the new alerts' transactions."""
        keys = list(keys)
        with self._merchants_lock:
            wanted = [key for key in keys if key not in self._merchants]
        select = self._statement(
            f"SELECT merchant_id FROM {self._keyspace}.transaction WHERE {key_condition(TRANSACTION_KEY)}"
        )
        values = [(key.account_no, key.tranpostdt, key.tranid) for key in wanted]
        found: dict[TransactionKey, str | None] = {}
        for key, (success, result) in zip(
            wanted, execute_concurrent_with_args(self._session, select, values, concurrency=32), strict=True
        ):
            if not success:
                raise result
            row = result.one()
            if row is not None:  # not written yet: asked again next time
                found[key] = row.merchant_id
        with self._merchants_lock:  # the API's threads share one store, and an LRU is not thread-safe
            self._merchants.update(found)
            return {key: found[key] if key in found else self._merchants.get(key) for key in keys}

    def alert(self, key: TransactionKey) -> Alert | None:
        """The alert on the transaction ``key``, every signal's evidence; None when nothing flagged it. Point
        reads: its ``cust_fraud_by_day`` rows, then its hits under each customer they name and the account's
        holder."""
        keyspace = self._keyspace
        flagged = [
            row
            for row in self._rows(
                f"SELECT {', '.join(CUST_FRAUD_COLUMNS)} FROM {keyspace}.cust_fraud_by_day "
                "WHERE day = ? AND tranpostdt = ? AND tranid = ?",
                (key.day, key.tranpostdt, key.tranid),
            )
            if row["account_no"] == key.account_no
        ]
        holder = self._rows(
            f"SELECT customer_id FROM {keyspace}.account_holder WHERE account_no = ?", (key.account_no,)
        )
        # A hit is filed under its rule's customer, or the holder when the job knew one: the merchant's copy of
        # the hits names them all.
        merchant = self._rows(
            f"SELECT merchant_id FROM {keyspace}.transaction WHERE {key_condition(TRANSACTION_KEY)}",
            (key.account_no, key.tranpostdt, key.tranid),
        )
        at_merchant = (
            self._rows(
                f"SELECT customer_id FROM {keyspace}.rule_hit_by_merchant_day "
                "WHERE merchant_id = ? AND day = ? AND tranpostdt = ? AND tranid = ? AND account_no = ?",
                (merchant[0]["merchant_id"], key.day, key.tranpostdt, key.tranid, key.account_no),
            )
            if merchant and merchant[0]["merchant_id"] is not None
            else []
        )
        customers = {row["customer_id"] for row in (*flagged, *holder, *at_merchant) if row["customer_id"] is not None}
        hits = [
            row
            for customer in sorted(customers)
            for row in self._rows(
                f"SELECT {', '.join(RULE_HIT_COLUMNS)} FROM {keyspace}.rule_hit "
                "WHERE customer_id = ? AND tranpostdt = ? AND tranid = ? AND account_no = ?",
                (customer, key.tranpostdt, key.tranid, key.account_no),
            )
        ]
        alerts = alerts_of(flagged, hits)
        if not alerts:
            # A hit under a customer none of those name (a holder since changed): the day's alerts have it.
            return next((alert for alert in self.alerts_of_day(key.day) if alert.key == key), None)
        (alert,) = alerts
        # The transaction's merchant, read above, for a profile-change alert that no hit names.
        return (
            alert
            if alert.merchant_id is not None
            else _with_merchant(alert, merchant[0]["merchant_id"] if merchant else None)
        )

    def reviews_of_day(self, day: date) -> list[Review]:
        cql = f"SELECT {', '.join(ALERT_REVIEW_COLUMNS)} FROM {self._keyspace}.alert_review WHERE day = ?"
        return [_review_of(row) for row in self._rows(cql, (day,))]

    def reviews_of(self, key: TransactionKey) -> list[Review]:
        """An alert's history, oldest first."""
        cql = (
            f"SELECT {', '.join(ALERT_REVIEW_COLUMNS)} FROM {self._keyspace}.alert_review "
            f"WHERE day = ? AND {key_condition(TRANSACTION_KEY)}"
        )
        return [_review_of(row) for row in self._rows(cql, (key.day, key.account_no, key.tranpostdt, key.tranid))]

    def transaction(self, key: TransactionKey) -> dict[str, Any] | None:
        cql = (
            f"SELECT {', '.join(SHOWN_TRANSACTION_COLUMNS)} FROM {self._keyspace}.transaction "
            f"WHERE {key_condition(TRANSACTION_KEY)}"
        )
        rows = self._rows(cql, (key.account_no, key.tranpostdt, key.tranid))
        return rows[0] if rows else None

    def transactions_around(self, key: TransactionKey, before: int, after: int) -> list[dict[str, Any]]:
        """The account's transaction ``key`` with up to ``before`` transactions before it and ``after`` after,
        oldest first."""
        columns = "tranpostdt, tranid, amount, merchant_id, risk_score, fraud_probability"
        table = f"{self._keyspace}.transaction"
        earlier = self._rows(
            f"SELECT {columns} FROM {table} WHERE account_no = ? AND tranpostdt <= ? LIMIT ?",
            (key.account_no, key.tranpostdt, before + 1),
        )
        later = self._rows(
            f"SELECT {columns} FROM {table} WHERE account_no = ? AND tranpostdt > ? ORDER BY tranpostdt ASC LIMIT ?",
            (key.account_no, key.tranpostdt, after),
        )
        return [*reversed(earlier), *later]

    def profile_changes(self, account_no: str, limit: int) -> list[dict[str, Any]]:
        """The account's last ``limit`` profile changes, newest first."""
        cql = f"SELECT {', '.join(CHANGE_COLUMNS)} FROM {self._keyspace}.cust_change WHERE account_no = ? LIMIT ?"
        return self._rows(cql, (account_no, limit))

    def known_cases(self, case_ids: Iterable[str]) -> dict[str, FraudCase]:
        return {case_id: case for case_id in case_ids if (case := self.cases.get(case_id)) is not None}

    def record(self, review: Review, pattern: str | None = None) -> FraudCase | None:
        """Store ``review`` and, for a confirm or a dismiss, the case it teaches (the transaction's vector, as
        the job stored it); return the case, None when there is none (a note, or no vector stored yet). The
        case first: a review on record always has its case."""
        case = None
        if review.action is not ReviewAction.NOTE:
            row = self.transaction(review.key)
            vector = None if row is None or row["vector"] is None else tuple(row["vector"])
            reviewed = ReviewedTransaction(
                review.key, vector, None if row is None else row["merchant_id"], None if row is None else row["amount"]
            )
            case = case_of_review(review, reviewed, pattern)
            if case is not None:
                self.cases.record([case])
        insert = self._statement(insert_statement(self._keyspace, "alert_review", ALERT_REVIEW_COLUMNS))
        key = review.key
        values = {
            "day": key.day,
            "account_no": key.account_no,
            "tranpostdt": key.tranpostdt,
            "tranid": key.tranid,
            "reviewed_at": review.reviewed_at,
            "review_id": review.review_id,
            "action": review.action.value,
            "analyst": review.analyst,
            "note": review.note,
            "customer_id": review.customer_id,
            "signals": list(review.signals),
        }
        self._session.execute(insert, tuple(values[column] for column in ALERT_REVIEW_COLUMNS))
        return case


def _with_merchant(alert: Alert, merchant_id: str | None) -> Alert:
    return Alert(alert.key, alert.customer_id, merchant_id, alert.amount, alert.flags)


def _review_of(row: dict[str, Any]) -> Review:
    return Review(
        key=TransactionKey.of(row["account_no"], row["tranpostdt"], row["tranid"]),
        reviewed_at=row["reviewed_at"],
        review_id=row["review_id"],
        action=ReviewAction(row["action"]),
        analyst=row["analyst"],
        note=row["note"],
        customer_id=row["customer_id"],
        signals=tuple(row["signals"] or ()),
    )
