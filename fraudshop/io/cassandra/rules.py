"""Store the fraud-prevention rules: add one, remove one, read them by id, by customer and by merchant.

A rule is written to three tables at once, in one logged batch (they are different partitions, so
all or nothing is what a logged batch gives): ``rule`` (the rules in force, by the scope the job
reads them by), ``rule_by_id`` (every rule ever created, with when it was deleted) and, for an
issuer's rule, ``rule_by_customer`` (a customer's rules in force, in one partition). A rule is never
changed: it is removed and another added.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import UNSET_VALUE, PreparedStatement

from fraudshop.io.cassandra.schema import insert_statement, key_condition
from fraudshop.io.cassandra.session import logged_batch, prepared
from fraudshop.model.changes import as_utc, to_cassandra_time
from fraudshop.model.rules import Rule, RuleDefinition, RuleScope, scope_of
from fraudshop.model.tables import (
    RULE_BY_CUSTOMER_KEY,
    RULE_BY_ID_COLUMNS,
    RULE_BY_ID_KEY,
    RULE_COLUMNS,
    RULE_KEY,
    RULE_PARTITION_KEY,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredRule:
    """A rule as ``rule_by_id`` keeps it: in force while ``deleted_at`` is None."""

    rule: Rule
    deleted_at: datetime | None = None


def _rule_of(row: Any) -> Rule:
    return Rule.from_row(row._asdict())


def _is_merchants(rule: Rule) -> bool:
    return scope_of(rule.definition)[0] is RuleScope.MERCHANT


class RuleStore:
    """The rule tables of ``keyspace``. Every statement is prepared once per session."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._keyspace = keyspace

    def _statement(self, cql: str) -> PreparedStatement:
        return prepared(self._session, cql, ConsistencyLevel.LOCAL_QUORUM)

    def add(self, definition: RuleDefinition, now: datetime) -> Rule:
        """Store a new rule, in force from ``now``: in ``rule``, ``rule_by_id`` and, for an issuer's
        rule, ``rule_by_customer``, all or nothing."""
        rule = Rule(uuid.uuid4(), definition, now)
        row = rule.as_row()
        # Unset, not null, where the kind has no such parameter: a null would write a tombstone.
        values = [UNSET_VALUE if row[column] is None else row[column] for column in RULE_COLUMNS]
        batch = logged_batch()
        for table in self._tables_of(rule):
            batch.add(self._statement(insert_statement(self._keyspace, table, RULE_COLUMNS)), values)
        self._session.execute(batch)
        log.info("added rule %s (%s) for %s %s", rule.rule_id, rule.kind.value, row["scope"], row["scope_id"])
        return rule

    def get(self, rule_id: uuid.UUID) -> StoredRule | None:
        """The rule with this id, in force or removed; None if it never existed."""
        where = key_condition(RULE_BY_ID_KEY)
        cql = f"SELECT {', '.join(RULE_BY_ID_COLUMNS)} FROM {self._keyspace}.rule_by_id WHERE {where}"
        row = self._session.execute(self._statement(cql), (rule_id,)).one()
        if row is None:
            return None
        return StoredRule(_rule_of(row), None if row.deleted_at is None else as_utc(row.deleted_at))

    def remove(self, rule_id: uuid.UUID, now: datetime) -> StoredRule | None:
        """Take the rule out of force at ``now``: its ``rule`` and ``rule_by_customer`` rows go and
        ``rule_by_id`` records ``deleted_at``, all or nothing. Removing a removed rule again writes
        nothing and returns it as it was removed; None if it never existed."""
        stored = self.get(rule_id)
        if stored is None or stored.deleted_at is not None:
            return stored
        rule = stored.rule
        row = rule.as_row()
        deleted_at = to_cassandra_time(as_utc(now))
        batch = logged_batch()
        delete_rule = f"DELETE FROM {self._keyspace}.rule WHERE {key_condition(RULE_KEY)}"
        batch.add(self._statement(delete_rule), [row[column] for column in RULE_KEY])
        if not _is_merchants(rule):
            delete_own = f"DELETE FROM {self._keyspace}.rule_by_customer WHERE {key_condition(RULE_BY_CUSTOMER_KEY)}"
            batch.add(self._statement(delete_own), [row[column] for column in RULE_BY_CUSTOMER_KEY])
        mark = f"UPDATE {self._keyspace}.rule_by_id SET deleted_at = ? WHERE {key_condition(RULE_BY_ID_KEY)}"
        batch.add(self._statement(mark), (deleted_at, rule.rule_id))
        self._session.execute(batch)
        log.info("removed rule %s (%s)", rule.rule_id, rule.kind.value)
        return StoredRule(rule, deleted_at)

    def rules_of_customer(self, customer_id: str) -> list[Rule]:
        """The customer's rules in force: on every account they hold, and on one of them; oldest first."""
        cql = f"SELECT {', '.join(RULE_COLUMNS)} FROM {self._keyspace}.rule_by_customer WHERE customer_id = ?"
        return self._listed(cql, (customer_id,))

    def rules_of_merchant(self, merchant_id: str) -> list[Rule]:
        """The merchant's rules in force, oldest first."""
        cql = f"SELECT {', '.join(RULE_COLUMNS)} FROM {self._keyspace}.rule WHERE {key_condition(RULE_PARTITION_KEY)}"
        return self._listed(cql, (RuleScope.MERCHANT.value, merchant_id))

    def _listed(self, cql: str, key: tuple[str, ...]) -> list[Rule]:
        # rule_id is random: the order a person expects is the order the rules were created in.
        rules = [_rule_of(row) for row in self._session.execute(self._statement(cql), key)]
        return sorted(rules, key=lambda rule: (rule.created_at, str(rule.rule_id)))

    @staticmethod
    def _tables_of(rule: Rule) -> tuple[str, ...]:
        """The tables a rule in force is written to: a customer's list holds the issuers' rules only."""
        return ("rule", "rule_by_id", *(() if _is_merchants(rule) else ("rule_by_customer",)))
