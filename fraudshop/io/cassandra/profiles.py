"""Store customers' profiles and record what changed, once per change, with lightweight transactions.

Cassandra refuses a conditional batch that spans partitions, so the profile (one ``customer``
partition) cannot be compared-and-set in the same batch as its changes (partitions of
``cust_change`` and the two tables beside it). An update therefore takes three steps, each all or
nothing, and can be completed by anyone who finds it half done:

1. **claim**: ``UPDATE customer SET pending_update = <the new profile> ... IF version = <the
   version it was diffed against> AND pending_update = null``. Of two concurrent updates of a
   customer, one claims; the other waits for it, then diffs against the profile it left. The
   version is a random id per stored profile, not ``updated_at``: two updates may carry the same
   ``changed_at``, and a claim made against a profile replaced meanwhile must fail.
2. **record**: one logged batch of the changes (the stored profile against the pending one), and
   of the ``account_holder`` rows: one per account the new profile holds, and the rows of the
   accounts it no longer holds deleted (the job finds a customer's rules through them).
3. **replace**: ``UPDATE customer SET <profile> ..., version = <a new id>, pending_update = null
   IF pending_update = <the claim>``.

A writer that dies after step 1 leaves its update pending: the next writer of that customer, or the
API's sweep (through the ``pending_since`` index), completes it once it is older than
``profiles.stale_update_seconds``. Steps 2 and 3 are idempotent, so completing it twice is harmless.
Staleness compares ``pending_since`` (the claimer's clock) with the observer's: the writers' clocks
are assumed synchronised (NTP) to well within that time. The claims are serialised with
LOCAL_SERIAL: within one data centre.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import BatchStatement, PreparedStatement
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from fraudshop.io.cassandra.changes import add_change_statements
from fraudshop.io.cassandra.schema import insert_statement, key_condition
from fraudshop.io.cassandra.session import logged_batch, prepared
from fraudshop.model.changes import ProfileChange, as_utc, to_cassandra_time
from fraudshop.model.profiles import CustomerProfile, PostalAddress, changed_fields, profile_changes
from fraudshop.model.tables import ACCOUNT_HOLDER_COLUMNS, CUSTOMER_COLUMNS, CUSTOMER_KEY, PROFILE_COLUMNS

log = logging.getLogger(__name__)


class ProfileOutcome(StrEnum):
    #: The customer's first profile: stored, no change recorded.
    BASELINE = "baseline"
    #: At least one field really changed: its changes are recorded.
    CHANGED = "changed"
    #: Nothing changed once normalised (the same profile again, a formatting edit): nothing written.
    UNCHANGED = "unchanged"


class OutOfOrderUpdate(Exception):
    """A profile with changes, older than the stored one: the bank's systems sent updates out of order."""

    def __init__(self, customer_id: str, changed_at: datetime, stored_at: datetime) -> None:
        super().__init__(
            f"customer {customer_id}'s stored profile is from {stored_at.isoformat()}, "
            f"later than this update's changed_at {changed_at.isoformat()}"
        )


class UpdateContention(Exception):
    """Other updates of the customer kept winning until the time allowed ran out."""


def outcome_unknown(error: Exception) -> str:
    """What to tell whoever sent a profile that Cassandra did not acknowledge (one of
    :data:`~fraudshop.io.cassandra.session.CASSANDRA_UNAVAILABLE`): a claim that applied is
    completed anyway, so sending the same profile again is safe."""
    return (
        f"Cassandra did not answer in time ({type(error).__name__}); the update may or may not have been "
        "applied, and sending the same profile again is safe"
    )


@dataclass(frozen=True)
class PendingUpdate:
    """An update between its claim and its replacement of the profile."""

    profile: CustomerProfile
    changed_at: datetime

    def to_json(self) -> str:
        return json.dumps({"profile": self.profile.as_dict(), "changed_at": self.changed_at.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> PendingUpdate:
        data = json.loads(text)
        return cls(CustomerProfile.from_dict(data["profile"]), datetime.fromisoformat(data["changed_at"]))


@dataclass(frozen=True)
class StoredProfile:
    profile: CustomerProfile
    updated_at: datetime
    version: uuid.UUID
    pending: PendingUpdate | None
    #: The claim's text, exactly as stored: the replacement's condition.
    pending_text: str | None
    pending_since: datetime | None


@dataclass(frozen=True)
class ProfileUpdate:
    outcome: ProfileOutcome
    profile: CustomerProfile
    updated_at: datetime
    changes: tuple[ProfileChange, ...] = ()
    recorded_at: datetime | None = None


def _profile_values(profile: CustomerProfile, updated_at: datetime) -> dict[str, Any]:
    return {
        "customer_id": profile.customer_id,
        "email": profile.email,
        "phone": profile.phone,
        "address_lines": list(profile.address.lines),
        "address_city": profile.address.city,
        "address_postcode": profile.address.postcode,
        "address_country": profile.address.country,
        "accounts": set(profile.accounts),
        "updated_at": updated_at,
    }


def _stored(row: Any) -> StoredProfile:
    profile = CustomerProfile(
        customer_id=row.customer_id,
        email=row.email,
        phone=row.phone,
        address=PostalAddress(
            tuple(row.address_lines or ()), row.address_city, row.address_postcode, row.address_country
        ),
        accounts=frozenset(row.accounts or ()),
    )
    return StoredProfile(
        profile=profile,
        updated_at=as_utc(row.updated_at),
        version=row.version,
        pending=PendingUpdate.from_json(row.pending_update) if row.pending_update else None,
        pending_text=row.pending_update,
        pending_since=as_utc(row.pending_since) if row.pending_since else None,
    )


#: The profile's own columns, written by the replacement (the key is in its WHERE).
_PROFILE_FIELDS = PROFILE_COLUMNS[len(CUSTOMER_KEY) :]


def add_holder_statements(
    session: Session,
    keyspace: str,
    batch: BatchStatement,
    held: CustomerProfile,
    released: frozenset[str] = frozenset(),
) -> None:
    """Add to ``batch`` an ``account_holder`` row for each account ``held`` holds, and the deletion
    of the rows of the ``released`` accounts it no longer holds (both idempotent). An account is
    assumed to belong to one customer (docs/profiles.md): a row is deleted whoever it names."""
    insert = prepared(session, insert_statement(keyspace, "account_holder", ACCOUNT_HOLDER_COLUMNS))
    for account_no in sorted(held.accounts):
        batch.add(insert, (account_no, held.customer_id))
    delete = prepared(
        session, f"DELETE FROM {keyspace}.account_holder WHERE {key_condition(ACCOUNT_HOLDER_COLUMNS[:1])}"
    )
    for account_no in sorted(released - held.accounts):
        batch.add(delete, (account_no,))


class _TryAgain(Exception):
    """Another writer holds or just changed the customer's row: read it again."""


class ProfileStore:
    """The ``customer`` table of ``keyspace``, and the change recording of its updates."""

    def __init__(self, session: Session, keyspace: str, stale_after: timedelta) -> None:
        self._session = session
        self._keyspace = keyspace
        self.stale_after = stale_after
        table = f"{keyspace}.customer"
        where = key_condition(CUSTOMER_KEY)
        self._read = self._prepare(
            f"SELECT {', '.join(CUSTOMER_COLUMNS)} FROM {table} WHERE {where}", ConsistencyLevel.LOCAL_SERIAL
        )
        self._insert_baseline = self._prepare(
            insert_statement(keyspace, "customer", (*PROFILE_COLUMNS, "version")) + " IF NOT EXISTS"
        )
        self._claim = self._prepare(
            f"UPDATE {table} SET pending_update = ?, pending_since = ? WHERE {where} "
            "IF version = ? AND pending_update = null"
        )
        self._replace = self._prepare(
            f"UPDATE {table} SET {', '.join(f'{column} = ?' for column in _PROFILE_FIELDS)}, version = ?, "
            f"pending_update = null, pending_since = null WHERE {where} IF pending_update = ?"
        )
        self._pending_before = self._prepare(
            f"SELECT customer_id FROM {table} WHERE pending_since < ?", ConsistencyLevel.LOCAL_QUORUM
        )

    def _prepare(self, cql: str, consistency: int = ConsistencyLevel.LOCAL_QUORUM) -> PreparedStatement:
        statement = self._session.prepare(cql)
        statement.consistency_level = consistency
        statement.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        return statement

    def read(self, customer_id: str) -> StoredProfile | None:
        """The stored profile, read through Paxos (LOCAL_SERIAL): an update in flight is seen."""
        row = self._session.execute(self._read, (customer_id,)).one()
        return None if row is None else _stored(row)

    def set_profile(self, profile: CustomerProfile, changed_at: datetime | None = None) -> ProfileUpdate:
        """Store ``profile`` as the customer's, changed at ``changed_at``, and record what changed.
        Without ``changed_at`` it changed now, or at the stored profile's time if that is later
        (another writer's clock ahead of ours must not make this update out of order).

        Raises :class:`OutOfOrderUpdate` for an update with changes older than the stored profile,
        :class:`UpdateContention` when other writers keep the row busy for longer than
        ``stale_after`` plus a few seconds."""
        retrying = Retrying(
            retry=retry_if_exception_type(_TryAgain),
            wait=wait_random_exponential(multiplier=0.005, max=0.5),
            stop=stop_after_delay(self.stale_after.total_seconds() + 5),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._try_update(profile, changed_at)
        except _TryAgain:
            raise UpdateContention(
                f"customer {profile.customer_id}'s profile stayed busy with other updates; try again"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _try_update(self, profile: CustomerProfile, changed_at: datetime | None) -> ProfileUpdate:
        stored = self.read(profile.customer_id)
        now = to_cassandra_time(datetime.now(UTC))
        if stored is None:
            at = to_cassandra_time(changed_at) if changed_at else now
            values = {**_profile_values(profile, at), "version": uuid.uuid4()}
            # Before the profile, so a writer that dies in between leaves holder rows a resend writes
            # again, never a profile without them. If another first profile wins, its update (diffed
            # against it, below) writes this one's accounts again and deletes the ones it drops.
            if profile.accounts:
                holders = logged_batch()
                add_holder_statements(self._session, self._keyspace, holders, profile)
                self._session.execute(holders)
            inserted = self._session.execute(self._insert_baseline, [values[c] for c in (*PROFILE_COLUMNS, "version")])
            if inserted.was_applied:
                return ProfileUpdate(ProfileOutcome.BASELINE, profile, at)
            raise _TryAgain  # another writer stored a first profile meanwhile: diff against it
        if stored.pending is not None:
            # Its writer is at work (milliseconds), or died: then complete it. Even an update of the
            # same profile waits, lest both write the changes' log entries.
            if self._is_stale(stored):
                self._complete(stored)
            raise _TryAgain  # then diff against the profile it leaves
        if not changed_fields(stored.profile, profile):
            return ProfileUpdate(ProfileOutcome.UNCHANGED, stored.profile, stored.updated_at)
        at = to_cassandra_time(changed_at) if changed_at else max(now, stored.updated_at)
        if at < stored.updated_at:
            raise OutOfOrderUpdate(profile.customer_id, at, stored.updated_at)
        pending = PendingUpdate(profile, at)
        claim = pending.to_json()
        claimed = self._session.execute(self._claim, (claim, now, profile.customer_id, stored.version))
        if not claimed.was_applied:
            raise _TryAgain
        # The row is the one diffed against (its version), frozen until the replacement.
        changes, recorded_at = self._complete(
            StoredProfile(stored.profile, stored.updated_at, stored.version, pending, claim, now)
        )
        return ProfileUpdate(ProfileOutcome.CHANGED, profile, at, tuple(changes), recorded_at)

    def _is_stale(self, stored: StoredProfile) -> bool:
        since = stored.pending_since or datetime.min.replace(tzinfo=UTC)
        return datetime.now(UTC) - since >= self.stale_after

    def _complete(self, stored: StoredProfile) -> tuple[list[ProfileChange], datetime]:
        """Steps 2 and 3 of a claimed update: record its changes, then replace the profile. Returns
        the changes and when they were recorded."""
        if stored.pending is None or stored.pending_text is None:
            raise ValueError(f"customer {stored.profile.customer_id} has no pending update")
        pending = stored.pending
        recorded_at = to_cassandra_time(datetime.now(UTC))
        changes = profile_changes(stored.profile, pending.profile, pending.changed_at)
        batch = logged_batch()
        for change in changes:
            add_change_statements(self._session, self._keyspace, batch, change, recorded_at)
        add_holder_statements(self._session, self._keyspace, batch, pending.profile, stored.profile.accounts)
        if len(batch) > 0:  # a profile with no account before or after has neither changes nor holders
            self._session.execute(batch)
        values = _profile_values(pending.profile, pending.changed_at)
        replaced = self._session.execute(
            self._replace,
            [*(values[c] for c in _PROFILE_FIELDS), uuid.uuid4(), pending.profile.customer_id, stored.pending_text],
        )
        if not replaced.was_applied:  # another writer completed it meanwhile; the changes' rows are the same
            log.info("customer %s's pending update was completed by another writer", pending.profile.customer_id)
        return changes, recorded_at

    def complete_stale_updates(self) -> int:
        """Complete every update pending for longer than ``stale_after`` (its writer died between
        claim and replacement); return how many. One that fails is logged and left for the next sweep."""
        before = to_cassandra_time(datetime.now(UTC) - self.stale_after)
        completed = 0
        for row in self._session.execute(self._pending_before, (before,)):
            try:
                stored = self.read(row.customer_id)
                if stored is not None and stored.pending is not None and self._is_stale(stored):
                    log.warning("completing customer %s's update left pending by its writer", row.customer_id)
                    self._complete(stored)
                    completed += 1
            except Exception:  # one customer's row (unreadable, a timeout) must not stop the others'
                log.exception("could not complete customer %s's pending update; next sweep retries", row.customer_id)
        return completed
