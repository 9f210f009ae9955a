"""The benchmark's seeded workload: which accounts changed their profile, the transactions
offered, and the rows the stores must hold afterwards."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fraudshop.lab.patterns import seeded_pattern_cases
from fraudshop.lab.workload import account_number, merchant_catalogue, synthetic_rules, synthetic_transactions
from fraudshop.model.cases import FraudCase
from fraudshop.model.changes import CHANGE_TYPES, ProfileChange
from fraudshop.model.records import Transaction
from fraudshop.model.rules import RuleDefinition, RuleKind

#: (account_no, tranid): a transaction's identity in bank.transaction.
TransactionKey = tuple[str, str]
#: (customer_id, tranid): an alert's identity in bank.cust_fraud.
AlertKey = tuple[str, str]


#: Old changes are spread over this many times the transacting accounts (as in a bank, most
#: customers with a history do not transact in a given minute).
HISTORY_ACCOUNTS_FACTOR = 10
#: The bench's rules: mostly customers' amount limits, some new-merchant checks and monthly caps, a few
#: notifications of everything; the merchants' staff confirmations and daily counts.
RULE_MIX = {
    RuleKind.AMOUNT_OVER: 5,
    RuleKind.NEW_MERCHANT: 2,
    RuleKind.MERCHANT_MONTHLY_CAP: 2,
    RuleKind.NOTIFY_EVERY_TRANSACTION: 1,
    RuleKind.MERCHANT_AMOUNT_OVER: 1,
    RuleKind.MERCHANT_DAILY_COUNT: 1,
}
#: How far back the oldest change of the history lies.
HISTORY_DAYS = 365


@dataclass(frozen=True)
class Workload:
    """Transactions over ``accounts`` accounts; every ``changed_every``-th account had its profile
    changed an hour before the run, so all its transactions of the run are inside the window.

    ``history_changes`` older changes (2 to 365 days old, so none qualifies) fill cust_change as
    a bank's years of profile changes would: a design that re-reads the whole table every batch
    pays for them, one that reads the batch's accounts' partitions does not."""

    accounts: int
    changed_every: int
    seed: int
    history_changes: int = 0
    #: Fraud-prevention rules in force, over ten times the transacting accounts (as the change history)
    #: and over the whole merchant catalogue, in :data:`RULE_MIX` proportions.
    rules: int = 0
    #: Instances of each labelled fraud pattern seeded as known cases (fraud and genuine, as
    #: ``fraudshop cases seed`` records them), so the similarity step searches a realistic case set.
    cases_per_pattern: int = 0

    def known_cases(self, now: datetime) -> list[FraudCase]:
        return seeded_pattern_cases(self.cases_per_pattern, self.seed, now)

    def rule_definitions(self) -> list[RuleDefinition]:
        history_accounts = HISTORY_ACCOUNTS_FACTOR * self.accounts
        return synthetic_rules(self.rules, history_accounts, self.seed, RULE_MIX, merchants=len(merchant_catalogue()))

    def changed_indexes(self) -> range:
        return range(0, self.accounts, self.changed_every)

    def changed_accounts(self) -> set[str]:
        return {account_number(index) for index in self.changed_indexes()}

    def changes(self, now: datetime) -> list[ProfileChange]:
        return [
            ProfileChange(account_number(index), customer_of(account_number(index)), "email", now - timedelta(hours=1))
            for index in self.changed_indexes()
        ]

    def history(self, now: datetime) -> Iterator[ProfileChange]:
        rng = random.Random(self.seed)
        history_accounts = HISTORY_ACCOUNTS_FACTOR * self.accounts
        for i in range(self.history_changes):
            account = account_number(i % history_accounts)
            age = timedelta(days=rng.uniform(2, HISTORY_DAYS))
            yield ProfileChange(account, customer_of(account), rng.choice(CHANGE_TYPES), now - age)


def customer_of(account_no: str) -> str:
    return f"CUST-{int(account_no[3:])}"


@dataclass
class OfferedTransactions:
    """The workload's transaction stream, posted "now", remembering the key of each one taken
    (``send_transactions`` takes exactly the ones it sends)."""

    workload: Workload
    keys: list[TransactionKey] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stream = synthetic_transactions(self.workload.accounts, seed=self.workload.seed)

    def __iter__(self) -> Iterator[Transaction]:
        for transaction in self._stream:
            self.keys.append((transaction["account_no"], transaction["tranid"]))
            yield transaction


def expected_alerts(offered: Iterable[TransactionKey], changed_accounts: set[str]) -> set[AlertKey]:
    """Every offered transaction of a changed account is flagged, for that account's customer."""
    return {(customer_of(account), tranid) for account, tranid in offered if account in changed_accounts}
