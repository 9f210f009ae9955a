"""The reads fraud teams make, each served by one partition. Shared by the API, the CLI and the demo."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from cassandra import InvalidRequest
from cassandra.cluster import Session
from cassandra.protocol import ProtocolException
from cassandra.query import SimpleStatement
from cassandra.util import Date

from fraudshop.model.changes import as_utc
from fraudshop.model.tables import (
    CHANGE_BY_CUSTOMER_KEY,
    CUST_FRAUD_COLUMNS,
    KAFKA_POSITION,
    LINEAGE_COLUMNS,
    RULE_HIT_COLUMNS,
)

#: An alert as a person reads it: cust_fraud's columns without the Kafka lineage.
ALERT_SUMMARY_COLUMNS: tuple[str, ...] = tuple(c for c in CUST_FRAUD_COLUMNS if c not in LINEAGE_COLUMNS)
#: A rule hit as a person reads it: without the Kafka lineage and the machine-facing columns.
HIT_SUMMARY_COLUMNS: tuple[str, ...] = tuple(
    c for c in RULE_HIT_COLUMNS if c not in (*KAFKA_POSITION, "rule_parameters", "hit_id", "detected_at")
)


class BadPageToken(ValueError):
    """A page token that this API did not hand out."""


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    #: Pass back to get the next page; None on the last page.
    next_page: str | None


def utc_value(value: Any) -> Any:
    """The driver returns naive datetimes meaning UTC; say so. A ``date`` column comes as the
    driver's own Date: a datetime.date reads (and serialises) as one."""
    if isinstance(value, Date):
        return value.date()
    return as_utc(value) if isinstance(value, datetime) else value


def utc_row(row: Any) -> dict[str, Any]:
    """A driver row as a dict, each value as :func:`utc_value` reads it."""
    return {name: utc_value(value) for name, value in row._asdict().items()}


def _page(session: Session, cql: str, key: Any, limit: int, page: str | None) -> Page:
    """One page of ``cql``'s rows: ``key`` binds its one marker, or a tuple of them its several."""
    try:
        paging_state = base64.b64decode(page.encode(), altchars=b"-_", validate=True) if page else None
        keys = key if isinstance(key, tuple) else (key,)
        result = session.execute(SimpleStatement(cql, fetch_size=limit), keys, paging_state=paging_state)
    except (binascii.Error, ValueError, InvalidRequest, ProtocolException):
        if not page:
            raise
        raise BadPageToken("page token is not one this API returned") from None
    rows = [utc_row(row) for row in result.current_rows]
    return Page(rows, base64.urlsafe_b64encode(result.paging_state).decode() if result.paging_state else None)


def alerts_of_customer(
    session: Session, keyspace: str, customer_id: str, limit: int = 50, page: str | None = None
) -> Page:
    """Flagged transactions of a customer, newest first."""
    cql = f"SELECT {', '.join(CUST_FRAUD_COLUMNS)} FROM {keyspace}.cust_fraud WHERE customer_id = %s"
    return _page(session, cql, customer_id, limit, page)


def alerts_of_day(session: Session, keyspace: str, day: date, limit: int = 50, page: str | None = None) -> Page:
    """Transactions flagged on a UTC day (by transaction time), newest first."""
    # cust_fraud's columns: an alert reads the same whichever way it was found.
    cql = f"SELECT {', '.join(CUST_FRAUD_COLUMNS)} FROM {keyspace}.cust_fraud_by_day WHERE day = %s"
    return _page(session, cql, day, limit, page)


def changes_of_customer(
    session: Session, keyspace: str, customer_id: str, limit: int = 50, page: str | None = None
) -> Page:
    """A customer's profile changes, newest first."""
    # cust_change_by_customer's columns are its key.
    cql = f"SELECT {', '.join(CHANGE_BY_CUSTOMER_KEY)} FROM {keyspace}.cust_change_by_customer WHERE customer_id = %s"
    return _page(session, cql, customer_id, limit, page)


def hits_of_customer(
    session: Session, keyspace: str, customer_id: str, limit: int = 50, page: str | None = None
) -> Page:
    """Rule hits on a customer's transactions, newest first."""
    cql = f"SELECT {', '.join(RULE_HIT_COLUMNS)} FROM {keyspace}.rule_hit WHERE customer_id = %s"
    return _page(session, cql, customer_id, limit, page)


def hits_of_merchant_day(
    session: Session, keyspace: str, merchant_id: str, day: date, limit: int = 50, page: str | None = None
) -> Page:
    """Rule hits on a merchant's transactions of a UTC day, and its daily counts, newest first."""
    cql = (
        f"SELECT {', '.join(RULE_HIT_COLUMNS)} FROM {keyspace}.rule_hit_by_merchant_day "
        "WHERE merchant_id = %s AND day = %s"
    )
    return _page(session, cql, (merchant_id, day), limit, page)
