"""The desk's reads and writes: a day's alerts (``cust_fraud_by_day`` and ``rule_hit`` by its ``day`` index),
a day's reviews (``alert_review``), what an alert's page shows, and recording a review with the case it
teaches (``fraud_case``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from cassandra import ConsistencyLevel, InvalidRequest
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import PreparedStatement

from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.reads import utc_value
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
    TRANSACTION_COLUMNS,
    TRANSACTION_KEY,
)


class DeskSchemaMissing(RuntimeError):
    """The keyspace predates the desk: ``fraudshop schema apply`` adds its table and index."""


#: What an alert's page shows of the transaction and of the account's other transactions.
_SHOWN_TRANSACTION_COLUMNS: tuple[str, ...] = (
    *TRANSACTION_COLUMNS,
    "vector",
    "risk_score",
    "nearest_cases",
    "nearest_cosines",
    "fraud_probability",
    "model_version",
)


def _row(row: Any) -> dict[str, Any]:
    return {name: utc_value(value) for name, value in row._asdict().items()}


class DeskStore:
    """The desk's tables of ``keyspace``. Every statement is prepared once per session."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._keyspace = keyspace
        self.cases = CaseStore(session, keyspace)

    def _statement(self, cql: str) -> PreparedStatement:
        return prepared(self._session, cql, ConsistencyLevel.LOCAL_QUORUM)

    def _rows(self, cql: str, values: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [_row(row) for row in self._session.execute(self._statement(cql), values)]

    def alerts_of_day(self, day: date) -> list[Alert]:
        """Every alert on a transaction of the UTC ``day``, newest first: its profile-change alerts and its
        rule hits (the similarity signal's included). A profile-change alert without a hit gets its merchant
        from the transaction row."""
        keyspace = self._keyspace
        flagged = self._rows(
            f"SELECT {', '.join(CUST_FRAUD_COLUMNS)} FROM {keyspace}.cust_fraud_by_day WHERE day = ?", (day,)
        )
        try:
            hits = self._rows(f"SELECT {', '.join(RULE_HIT_COLUMNS)} FROM {keyspace}.rule_hit WHERE day = ?", (day,))
        except InvalidRequest as error:
            raise DeskSchemaMissing(
                f"keyspace {keyspace} has no index rule_hit_day: run `fraudshop schema apply` (idempotent) with "
                f"this version ({error})"
            ) from None
        alerts = alerts_of(flagged, hits)
        without_merchant = [alert.key for alert in alerts if alert.merchant_id is None]
        merchants = self._merchants_of(without_merchant)
        return [
            alert if alert.merchant_id is not None else _with_merchant(alert, merchants.get(alert.key))
            for alert in alerts
        ]

    def _merchants_of(self, keys: Iterable[TransactionKey]) -> dict[TransactionKey, str | None]:
        select = self._statement(
            f"SELECT merchant_id FROM {self._keyspace}.transaction WHERE {key_condition(TRANSACTION_KEY)}"
        )
        wanted = list(keys)
        values = [(key.account_no, key.tranpostdt, key.tranid) for key in wanted]
        merchants: dict[TransactionKey, str | None] = {}
        for key, (success, result) in zip(
            wanted, execute_concurrent_with_args(self._session, select, values, concurrency=32), strict=True
        ):
            if not success:
                raise result
            row = result.one()
            merchants[key] = None if row is None else row.merchant_id
        return merchants

    def alert(self, key: TransactionKey) -> Alert | None:
        """The alert on the transaction ``key``, every signal's evidence; None when nothing flagged it."""
        return next((alert for alert in self.alerts_of_day(key.day) if alert.key == key), None)

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
            f"SELECT {', '.join(_SHOWN_TRANSACTION_COLUMNS)} FROM {self._keyspace}.transaction "
            f"WHERE {key_condition(TRANSACTION_KEY)}"
        )
        rows = self._rows(cql, (key.account_no, key.tranpostdt, key.tranid))
        return rows[0] if rows else None

    def recent_transactions(self, account_no: str, until: datetime, limit: int) -> list[dict[str, Any]]:
        """The account's last ``limit`` transactions up to ``until``, newest first."""
        cql = (
            f"SELECT tranpostdt, tranid, amount, merchant, merchant_id, risk_score, fraud_probability "
            f"FROM {self._keyspace}.transaction WHERE account_no = ? AND tranpostdt <= ? LIMIT ?"
        )
        return self._rows(cql, (account_no, until, limit))

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
        self._session.execute(
            insert,
            (
                key.day,
                key.account_no,
                key.tranpostdt,
                key.tranid,
                review.reviewed_at,
                review.review_id,
                review.action.value,
                review.analyst,
                review.note,
                review.customer_id,
                list(review.signals),
            ),
        )
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
