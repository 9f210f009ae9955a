"""Record a customer profile change: the event the fraud rule reacts to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

CHANGE_TYPES: tuple[str, ...] = ("email", "phone", "address", "other")


def to_cassandra_time(moment: datetime) -> datetime:
    """UTC, truncated to the millisecond: what a Cassandra timestamp keeps."""
    if moment.tzinfo is None:
        raise ValueError("a time zone is required")
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class ProfileChange:
    account_no: str
    customer_id: str
    change_type: str
    #: When the profile changed (UTC, millisecond precision).
    last_updated: datetime

    def __post_init__(self) -> None:
        if self.change_type not in CHANGE_TYPES:
            raise ValueError(f"change_type must be one of {', '.join(CHANGE_TYPES)}, got {self.change_type!r}")
        for name in ("account_no", "customer_id"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be empty")
        object.__setattr__(self, "last_updated", to_cassandra_time(self.last_updated))

    @property
    def key(self) -> tuple[str, datetime, str]:
        """cust_change's primary key: recording the same change again overwrites it."""
        return (self.account_no, self.last_updated, self.change_type)


def recorded_hour(recorded_at: datetime) -> datetime:
    return recorded_at.replace(minute=0, second=0, microsecond=0)


def record_profile_change(session: Session, keyspace: str, change: ProfileChange) -> datetime:
    """Write the change to cust_change, cust_change_by_customer and cust_change_log in one logged
    batch (all or nothing); return when it was recorded."""
    recorded_at = to_cassandra_time(datetime.now(UTC))
    statements = (
        (
            "INSERT INTO {ks}.cust_change (account_no, last_updated, change_type, customer_id) VALUES (?, ?, ?, ?)",
            (change.account_no, change.last_updated, change.change_type, change.customer_id),
        ),
        (
            "INSERT INTO {ks}.cust_change_by_customer (customer_id, last_updated, account_no, change_type) "
            "VALUES (?, ?, ?, ?)",
            (change.customer_id, change.last_updated, change.account_no, change.change_type),
        ),
        (
            "INSERT INTO {ks}.cust_change_log (recorded_hour, recorded_at, account_no, last_updated, change_type, "
            "customer_id) VALUES (?, ?, ?, ?, ?, ?)",
            (
                recorded_hour(recorded_at),
                recorded_at,
                change.account_no,
                change.last_updated,
                change.change_type,
                change.customer_id,
            ),
        ),
    )
    batch = BatchStatement(batch_type=BatchType.LOGGED)
    for cql, values in statements:
        batch.add(session.prepare(cql.format(ks=keyspace)), values)
    session.execute(batch)
    return recorded_at
