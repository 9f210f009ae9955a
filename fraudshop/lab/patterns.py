"""Labelled fraud patterns of the synthetic workload: each an account's ordinary month, then the fraud.
They seed the known cases (``fraudshop cases seed``) and give the demo something to catch.

- **card testing**: a stolen card number tried with small online amounts at a merchant new to the
  account, seconds apart, before it is used for real;
- **account takeover**: the account's contact details changed, then within hours large online
  purchases, several times the account's usual amounts, at merchants new to it;
- **velocity burst**: many transactions in one hour, at several merchants, none of them large.

Every draw comes from the pattern's seed, so a seed gives the same instances in every run.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fraudshop.lab.workload import Merchant, _MerchantChooser, _uuid4, card_transaction, merchant_catalogue
from fraudshop.model.cases import CaseLabel, CaseSource, FraudCase, seeded_case_id
from fraudshop.model.features import events_frame, transactions_frame, vectors_of
from fraudshop.model.records import Transaction


class FraudPattern(StrEnum):
    CARD_TESTING = "card_testing"
    ACCOUNT_TAKEOVER = "account_takeover"
    VELOCITY_BURST = "velocity_burst"


#: The ordinary month before a pattern: how many transactions (inclusive bounds) over how many days.
HISTORY = (25, 60)
HISTORY_DAYS = 28
#: Where takeover purchases are made: electronics and department stores (MCC 5732, 5311).
_TAKEOVER_CATEGORIES = ("5732", "5311")


@dataclass(frozen=True)
class PatternInstance:
    """One account's ordinary history, the profile change a takeover starts with (else None) and the
    fraudulent transactions, oldest first."""

    pattern: FraudPattern
    account_no: str
    history: tuple[Transaction, ...]
    changed_at: datetime | None
    frauds: tuple[Transaction, ...]


def pattern_instances(pattern: FraudPattern, count: int, seed: int, end: datetime) -> Iterator[PatternInstance]:
    """``count`` instances of ``pattern`` on accounts of their own (``FRAUD-<pattern>-<n>``), each
    fraud ending at most an hour before ``end``."""
    catalogue = merchant_catalogue()
    for number in range(count):
        rng = random.Random(f"{seed}/{pattern.value}/{number}")
        account_no = f"FRAUD-{pattern.value.upper().replace('_', '-')}-{number:04d}"
        cardnum = f"4{rng.randrange(10**14, 10**15):015d}"
        chooser = _MerchantChooser(rng.randrange(1 << 30))
        start = end - timedelta(hours=1 + rng.random() * 24)  # when the fraud begins
        history = _ordinary_month(rng, chooser, account_no, cardnum, start)
        seen = {transaction["merchant_id"] for transaction in history}
        unseen = [merchant for merchant in catalogue if merchant.merchant_id not in seen]
        changed_at = None
        if pattern is FraudPattern.CARD_TESTING:
            frauds = _card_testing(rng, unseen, account_no, cardnum, start)
        elif pattern is FraudPattern.ACCOUNT_TAKEOVER:
            changed_at = start - timedelta(minutes=rng.uniform(5, 180))
            usual = sorted(float(transaction["amount"]) for transaction in history)[len(history) // 2]
            frauds = _takeover(rng, unseen, account_no, cardnum, start, usual)
        else:
            frauds = _velocity_burst(rng, chooser, account_no, cardnum, start)
        yield PatternInstance(pattern, account_no, tuple(history), changed_at, tuple(frauds))


def _ordinary_month(
    rng: random.Random, chooser: _MerchantChooser, account_no: str, cardnum: str, before: datetime
) -> list[Transaction]:
    times = sorted(before - timedelta(days=rng.random() * HISTORY_DAYS) for _ in range(rng.randint(*HISTORY)))
    history = []
    for at in times:
        merchant = chooser.choose(0, rng)
        history.append(_sale(rng, account_no, cardnum, at, merchant, merchant.amount(rng)))
    return history


def _sale(
    rng: random.Random,
    account_no: str,
    cardnum: str,
    at: datetime,
    merchant: Merchant,
    amount: float,
    channel: str | None = None,
) -> Transaction:
    sales = [sale for sale in merchant.sales if channel in (None, sale[0])] or list(merchant.sales)
    sale = sales[int(rng.random() * len(sales))]
    return card_transaction(account_no, cardnum, at, _uuid4(rng.getrandbits(128)), merchant, sale, amount)


def _card_testing(
    rng: random.Random, unseen: list[Merchant], account_no: str, cardnum: str, start: datetime
) -> list[Transaction]:
    online = [merchant for merchant in unseen if any(sale[0] == "online" for sale in merchant.sales)]
    merchant = online[int(rng.random() * len(online))]
    at, frauds = start, []
    for _ in range(rng.randint(6, 12)):
        at += timedelta(seconds=rng.uniform(2, 40))
        frauds.append(_sale(rng, account_no, cardnum, at, merchant, round(rng.uniform(0.5, 2.0), 2), "online"))
    return frauds


def _takeover(
    rng: random.Random, unseen: list[Merchant], account_no: str, cardnum: str, start: datetime, usual: float
) -> list[Transaction]:
    targets = [merchant for merchant in unseen if merchant.mcc in _TAKEOVER_CATEGORIES]
    at, frauds = start, []
    for _ in range(rng.randint(1, 3)):
        merchant = targets[int(rng.random() * len(targets))]
        amount = round(min(max(usual, 20.0) * rng.uniform(5, 20), 6_000.0), 2)
        frauds.append(_sale(rng, account_no, cardnum, at, merchant, amount, "online"))
        at += timedelta(minutes=rng.uniform(2, 30))
    return frauds


def _velocity_burst(
    rng: random.Random, chooser: _MerchantChooser, account_no: str, cardnum: str, start: datetime
) -> list[Transaction]:
    count = rng.randint(10, 25)
    times = sorted(start + timedelta(minutes=rng.random() * 60) for _ in range(count))
    frauds = []
    for at in times:
        merchant = chooser.by_popularity(rng)
        frauds.append(_sale(rng, account_no, cardnum, at, merchant, merchant.amount(rng)))
    return frauds


#: The name of the genuine cases seeding records: ordinary transactions of the patterns' accounts.
ORDINARY = "ordinary"
#: One of every this many ordinary transactions becomes a genuine case.
GENUINE_EVERY = 3


def seeded_pattern_cases(per_pattern: int, seed: int, recorded_at: datetime) -> list[FraudCase]:
    """The known cases of ``per_pattern`` instances of every labelled pattern (:func:`seeded_cases`),
    ending at ``recorded_at``: what ``fraudshop cases seed``, the benchmark and the demo record."""
    instances = [
        instance for pattern in FraudPattern for instance in pattern_instances(pattern, per_pattern, seed, recorded_at)
    ]
    return seeded_cases(instances, recorded_at)


def seeded_cases(instances: Iterable[PatternInstance], recorded_at: datetime) -> list[FraudCase]:
    """A known case of fraud for each fraudulent transaction of ``instances``, and a genuine case for one
    of every :data:`GENUINE_EVERY` of their ordinary transactions, each with its vector against its
    account's history (and profile change). Genuine cases make the score a neighbours' vote: without them
    an ordinary purchase near a velocity burst's ordinary-looking purchases would score as fraud."""
    cases = []
    for number, instance in enumerate(instances):
        history = transactions_frame(instance.history)
        changes = [(instance.account_no, instance.changed_at)] if instance.changed_at else []
        events = events_frame(history, changes)
        frauds = zip(instance.frauds, vectors_of(transactions_frame(instance.frauds), events), strict=True)
        ordinary = zip(instance.history, vectors_of(history, events), strict=True)
        labelled = [
            *((CaseLabel.FRAUD, instance.pattern.value, index, *pair) for index, pair in enumerate(frauds)),
            *(
                (CaseLabel.GENUINE, ORDINARY, index, *pair)
                for index, pair in enumerate(ordinary)
                if index % GENUINE_EVERY == 0
            ),
        ]
        for label, pattern, index, transaction, vector in labelled:
            cases.append(
                FraudCase(
                    case_id=seeded_case_id(f"{instance.pattern.value}/{pattern}", number * 1_000 + index),
                    vector=tuple(float(x) for x in vector),
                    label=label,
                    source=CaseSource.SEEDED,
                    pattern=pattern,
                    recorded_at=recorded_at,
                    recorded_by="fraudshop cases seed",
                    merchant_id=str(transaction["merchant_id"]),
                    amount=float(transaction["amount"]),
                )
            )
    return cases
