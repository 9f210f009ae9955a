"""The fraud-prevention rules in plain Python, one transaction at a time: docs/rules.md's statement of
them as code. The job's Spark engine (:mod:`fraudshop.transforms.rules`) is checked against it in the
property test, and the fault drill computes the hits it expects with it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from fraudshop.model.rules import (
    ACTION_OF_KIND,
    AmountOver,
    MerchantAmountOver,
    MerchantDailyCount,
    MerchantMonthlyCap,
    NewMerchant,
    Rule,
    RuleKind,
    RuleScope,
    daily_hit_id,
    hit_id,
    scope_of,
)


@dataclass(frozen=True)
class Txn:
    """A transaction as the rules see it."""

    account_no: str
    tranpostdt: datetime
    tranid: str
    amount: float
    merchant_id: str | None
    merchant_category: str | None
    #: Kafka position: (partition, offset); the topic is always the same.
    position: tuple[int, int] = (0, 0)

    @property
    def key(self) -> tuple[str, datetime, str]:
        return (self.account_no, self.tranpostdt, self.tranid)

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.tranpostdt, self.tranid)


@dataclass(frozen=True)
class Hit:
    """A hit, as the rule_hit tables hold it (the columns that say what fired, where, and why)."""

    rule_id: str
    kind: str
    action: str
    customer_id: str | None
    merchant_id: str | None
    day: date
    account_no: str
    tranpostdt: datetime
    tranid: str
    amount: float
    evidence_value: float | None
    evidence_limit: float | None
    hit_id: str
    merchant_category: str | None
    #: The Kafka offset of the transaction's record, when it is the batch's (a daily count's crossing
    #: transaction may be a stored one).
    source_offset: int | None


def history_since(earliest: datetime, longest_lookback_days: int) -> datetime:
    """Where the history a transaction at ``earliest`` is judged against starts: the start of its UTC
    month (the monthly caps) or its longest lookback, whichever is earlier."""
    month_start = earliest.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return min(month_start, earliest - timedelta(days=longest_lookback_days))


def _month(moment: datetime) -> tuple[int, int]:
    return (moment.year, moment.month)


def applies(rule: Rule, txn: Txn, holders: dict[str, str]) -> bool:
    """Whether ``rule`` watches ``txn``: made once the rule existed, of its scope; a customer's rule on
    one account only while no one else holds it."""
    if txn.tranpostdt < rule.created_at:
        return False
    scope, scope_id = scope_of(rule.definition)
    if scope is RuleScope.ACCOUNT:
        holder = holders.get(txn.account_no)
        return txn.account_no == scope_id and holder in (None, getattr(rule.definition, "customer_id", None))
    if scope is RuleScope.CUSTOMER:
        return holders.get(txn.account_no) == scope_id
    return txn.merchant_id == scope_id


def _capped(definition: MerchantMonthlyCap, txn: Txn) -> bool:
    if definition.capped_merchant_id is not None:
        return txn.merchant_id == definition.capped_merchant_id
    return txn.merchant_category == definition.capped_merchant_category


def _judge(rule: Rule, txn: Txn, known: Iterable[Txn]) -> tuple[bool, float | None, float | None]:
    """(fires, evidence value, evidence limit) of a per-transaction rule."""
    definition = rule.definition
    if isinstance(definition, AmountOver | MerchantAmountOver):
        return txn.amount > definition.amount_limit, txn.amount, definition.amount_limit
    if rule.kind is RuleKind.NOTIFY_EVERY_TRANSACTION:
        return True, None, None
    account = [k for k in known if k.account_no == txn.account_no]
    if isinstance(definition, NewMerchant):
        since = txn.tranpostdt - timedelta(days=definition.lookback_days)
        earlier = [k for k in account if k.order < txn.order and k.tranpostdt >= since]
        at_merchant = [k for k in earlier if k.merchant_id == txn.merchant_id]
        fires = txn.merchant_id is not None and not at_merchant
        return fires, float(len(earlier)), float(definition.lookback_days)
    assert isinstance(definition, MerchantMonthlyCap)
    spent = sum(
        (
            money(k.amount)
            for k in account
            if k.order <= txn.order and _month(k.tranpostdt) == _month(txn.tranpostdt) and _capped(definition, k)
            if k.amount > 0
        ),
        Decimal(0),
    )
    fires = _capped(definition, txn) and txn.amount > 0 and spent > money(definition.amount_limit)
    return fires, float(spent), definition.amount_limit


def money(amount: float) -> Decimal:
    """An amount as the engine sums it: its shortest decimal form, to 4 places, halves up."""
    return Decimal(repr(amount)).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def judge_batch(
    batch: Sequence[Txn],
    stored: dict[tuple[str, datetime, str], Txn],
    rules: Sequence[Rule],
    holders: dict[str, str],
    done: set[str],
) -> set[Hit]:
    """The hits of one micro-batch, given the transactions stored by earlier batches and the ids of the
    hits done before (stored and announced: never found again). A batch's record delivered twice counts
    once (its earliest Kafka position)."""
    own: dict[tuple[str, datetime, str], Txn] = {}
    for txn in sorted(batch, key=lambda t: t.position):
        own.setdefault(txn.key, txn)
    known = {**stored, **own}
    by_account: dict[str, list[Txn]] = defaultdict(list)
    by_merchant_day: dict[tuple[str | None, date], list[Txn]] = defaultdict(list)
    for txn in known.values():
        by_account[txn.account_no].append(txn)
        by_merchant_day[(txn.merchant_id, txn.tranpostdt.date())].append(txn)
    hits: set[Hit] = set()
    for txn in own.values():
        for rule in rules:
            if rule.kind is RuleKind.MERCHANT_DAILY_COUNT or not applies(rule, txn, holders):
                continue
            fires, value, limit = _judge(rule, txn, by_account[txn.account_no])
            identity = hit_id(rule.rule_id, *txn.key)
            if fires and identity not in done:
                customer = getattr(rule.definition, "customer_id", None) or holders.get(txn.account_no)
                hits.add(_hit(rule, txn, customer, value, limit, identity, in_batch=True))
    for rule in rules:
        definition = rule.definition
        if not isinstance(definition, MerchantDailyCount):
            continue
        # The days on which a transaction of the batch the rule watches is over the amount.
        days = {
            t.tranpostdt.date()
            for t in own.values()
            if applies(rule, t, holders) and t.amount > definition.amount_above
        }
        for day in days:
            identity = daily_hit_id(rule.rule_id, definition.merchant_id, day)
            if identity in done:
                continue
            day_over = (t for t in by_merchant_day[(definition.merchant_id, day)] if t.amount > definition.amount_above)
            # In event time; transactions of different accounts may share a time and a tranid.
            counted = sorted(day_over, key=lambda t: (*t.order, t.account_no))
            if len(counted) > definition.count_limit:
                crossing = counted[definition.count_limit]
                count, limit = float(len(counted)), float(definition.count_limit)
                # A merchant's notice: filed under no customer.
                hits.add(_hit(rule, crossing, None, count, limit, identity, in_batch=crossing.key in own))
    return hits


def _hit(
    rule: Rule,
    txn: Txn,
    customer: str | None,
    value: float | None,
    limit: float | None,
    identity: str,
    in_batch: bool,
) -> Hit:
    return Hit(
        str(rule.rule_id),
        rule.kind.value,
        ACTION_OF_KIND[rule.kind].value,
        customer,
        txn.merchant_id,
        txn.tranpostdt.date(),
        txn.account_no,
        txn.tranpostdt,
        txn.tranid,
        txn.amount,
        value,
        limit,
        identity,
        txn.merchant_category if in_batch else None,
        txn.position[1] if in_batch else None,
    )
