"""A customer profile change: the event the fraud rule reacts to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class ChangeType(StrEnum):
    """What changed on a customer's profile. Every type flags the transactions of the change window."""

    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"
    #: An account joined the customer's profile (a classic takeover step: the new account receives the money).
    ACCOUNT_ADDED = "account_added"
    #: An account left the customer's profile; recorded on the accounts the customer keeps.
    ACCOUNT_REMOVED = "account_removed"
    #: A change the caller names no field of (the original proofshop's stand-in).
    OTHER = "other"


CHANGE_TYPES: tuple[str, ...] = tuple(change_type.value for change_type in ChangeType)


def as_utc(moment: datetime) -> datetime:
    """``moment`` with its time zone, UTC when it has none (the driver's and naive inputs' convention)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_time(text: str) -> datetime:
    """An ISO-8601 time given as text (``--at``, ``--as-of``), naive = UTC; argparse names the option
    when the text is not one."""
    return as_utc(datetime.fromisoformat(text))


def to_cassandra_time(moment: datetime) -> datetime:
    """UTC, truncated to the millisecond: what a Cassandra timestamp keeps."""
    if moment.tzinfo is None:
        raise ValueError("a time zone is required")
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


class InvalidField(ValueError):
    """An input field that is not a valid value: ``field`` is its dotted path (``address.country``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def checked_id(field: str, value: str, max_length: int) -> str:
    """An id (account, customer) without surrounding whitespace; :class:`InvalidField` if that
    leaves it empty or longer than ``max_length``."""
    stripped = value.strip()
    if not stripped:
        raise InvalidField(field, f"{field} must not be empty")
    if len(stripped) > max_length:
        raise InvalidField(field, f"{field} is {len(stripped)} characters, more than {max_length}")
    return stripped


def checked_change_time(changed_at: datetime | None, now: datetime, max_future_skew: timedelta) -> datetime:
    """When a profile changed: ``changed_at`` (naive = UTC), else ``now``. Refused (ValueError) when
    further ahead of ``now`` than writers' clocks drift: its window would start in the future, and
    a stored profile that new would refuse every real update until then."""
    moment = as_utc(changed_at or now)
    if moment > now + max_future_skew:
        raise ValueError(
            f"changed_at {moment.isoformat()} is in the future (now is {now.isoformat(timespec='seconds')})"
        )
    return moment


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


@dataclass(frozen=True)
class RecordedChange:
    """A cust_change_log entry: a change as it was recorded, and when."""

    recorded_at: datetime
    change: ProfileChange
    #: Who the change's key belonged to before an owner correction recorded it for another customer.
    previous_customer_id: str | None = None

    @property
    def key(self) -> tuple[datetime, str, datetime, str]:
        """cust_change_log's key (its partition, the hour, follows): each recording is an entry of its own."""
        return (self.recorded_at, *self.change.key)
