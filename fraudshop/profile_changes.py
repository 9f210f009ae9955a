"""Record a customer profile change in cust_change: the event the fraud rule reacts to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from cassandra.cluster import Session

CHANGE_TYPES: tuple[str, ...] = ("email", "phone", "address", "other")


@dataclass(frozen=True)
class ProfileChange:
    account_no: str
    customer_id: str
    change_type: str
    #: When the profile changed, UTC, millisecond precision (Cassandra's).
    last_updated: datetime

    def __post_init__(self) -> None:
        if self.change_type not in CHANGE_TYPES:
            raise ValueError(f"change_type must be one of {', '.join(CHANGE_TYPES)}, got {self.change_type!r}")
        for name in ("account_no", "customer_id"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be empty")
        if self.last_updated.tzinfo is None:
            raise ValueError("last_updated must carry a time zone")
        utc = self.last_updated.astimezone(timezone.utc)
        object.__setattr__(self, "last_updated", utc.replace(microsecond=utc.microsecond // 1000 * 1000))


def record_profile_change(session: Session, keyspace: str, change: ProfileChange) -> None:
    statement = session.prepare(
        f"INSERT INTO {keyspace}.cust_change (account_no, last_updated, change_type, customer_id) VALUES (?, ?, ?, ?)"
    )
    session.execute(statement, (change.account_no, change.last_updated, change.change_type, change.customer_id))
