"""Record a customer profile change in cust_change, cust_change_by_customer and cust_change_log at once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import UNSET_VALUE, BatchStatement

from fraudshop.io.cassandra.schema import insert_statement, key_condition
from fraudshop.io.cassandra.session import logged_batch, prepared
from fraudshop.model.changes import ProfileChange, recorded_hour, to_cassandra_time
from fraudshop.model.tables import (
    CHANGE_BY_CUSTOMER_KEY,
    CHANGE_COLUMNS,
    CHANGE_KEY,
    CHANGE_LOG_COLUMNS,
    PREVIOUS_CUSTOMER,
)


def record_profile_change(session: Session, keyspace: str, change: ProfileChange) -> datetime:
    """Write the change to the three tables in one logged batch (all or nothing); return when it
    was recorded.

    Recording it again for another customer (an owner correction) replaces the earlier customer:
    their cust_change_by_customer row goes, and the log entry names them as ``previous_customer_id``
    so the detection job drops their alerts for the change."""
    recorded_at = to_cassandra_time(datetime.now(UTC))
    batch = logged_batch()
    add_change_statements(session, keyspace, batch, change, recorded_at)
    session.execute(batch)
    return recorded_at


def add_change_statements(
    session: Session, keyspace: str, batch: BatchStatement, change: ProfileChange, recorded_at: datetime
) -> None:
    """Add the writes of ``change`` to the three tables, recorded at ``recorded_at``, to ``batch``."""
    # At LOCAL_QUORUM, like the batch: a read at ONE could miss the owner being replaced.
    read = prepared(session, f"SELECT customer_id FROM {keyspace}.cust_change WHERE {key_condition(CHANGE_KEY)}")
    bound = read.bind(change.key)
    bound.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    current = session.execute(bound).one()
    previous = current.customer_id if current and current.customer_id != change.customer_id else None
    values: dict[str, Any] = {
        **dataclasses.asdict(change),
        "recorded_hour": recorded_hour(recorded_at),
        "recorded_at": recorded_at,
        # Unset, not null, when there is none: a null would write a tombstone.
        PREVIOUS_CUSTOMER: UNSET_VALUE if previous is None else previous,
    }
    for table, columns in (
        ("cust_change", CHANGE_COLUMNS),
        ("cust_change_by_customer", CHANGE_BY_CUSTOMER_KEY),
        ("cust_change_log", CHANGE_LOG_COLUMNS),
    ):
        batch.add(prepared(session, insert_statement(keyspace, table, columns)), [values[column] for column in columns])
    if previous is not None:
        delete = f"DELETE FROM {keyspace}.cust_change_by_customer WHERE {key_condition(CHANGE_BY_CUSTOMER_KEY)}"
        previous_row = {**values, "customer_id": previous}
        batch.add(prepared(session, delete), [previous_row[column] for column in CHANGE_BY_CUSTOMER_KEY])
