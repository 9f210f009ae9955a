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

from fraudshop.model.changes import as_utc
from fraudshop.model.tables import CHANGE_BY_CUSTOMER_KEY, CUST_FRAUD_COLUMNS, LINEAGE_COLUMNS

#: An alert as a person reads it: cust_fraud's columns without the Kafka lineage.
ALERT_SUMMARY_COLUMNS: tuple[str, ...] = tuple(c for c in CUST_FRAUD_COLUMNS if c not in LINEAGE_COLUMNS)


class BadPageToken(ValueError):
    """A page token that this API did not hand out."""


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    #: Pass back to get the next page; None on the last page.
    next_page: str | None


def _utc(value: Any) -> Any:
    """The driver returns naive datetimes meaning UTC; say so."""
    return as_utc(value) if isinstance(value, datetime) else value


def _page(session: Session, cql: str, key: Any, limit: int, page: str | None) -> Page:
    try:
        paging_state = base64.b64decode(page.encode(), altchars=b"-_", validate=True) if page else None
        result = session.execute(SimpleStatement(cql, fetch_size=limit), (key,), paging_state=paging_state)
    except (binascii.Error, ValueError, InvalidRequest, ProtocolException):
        if not page:
            raise
        raise BadPageToken("page token is not one this API returned") from None
    rows = [{name: _utc(value) for name, value in row._asdict().items()} for row in result.current_rows]
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
