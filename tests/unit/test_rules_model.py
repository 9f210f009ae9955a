"""The fraud-prevention rules' model (fraudshop.model.rules): each kind's definition is checked with the
bad field named, a rule's scope and parameters follow from its definition, a stored row reads back as
the same rule for every kind, hit ids are stable and distinct, and each kind's reason reads as stated."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudshop.model.changes import InvalidField
from fraudshop.model.rules import (
    ACTION_OF_KIND,
    OWNER_FIELDS,
    PARAMETERS,
    RULE_KINDS,
    AmountOver,
    MerchantAmountOver,
    MerchantDailyCount,
    MerchantMonthlyCap,
    NewMerchant,
    NotifyEveryTransaction,
    Rule,
    RuleAction,
    RuleKind,
    RuleScope,
    checked_rule,
    daily_hit_id,
    hit_id,
    parameters_of,
    parameters_text,
    reason,
    scope_of,
)
from fraudshop.model.tables import RULE_COLUMNS

MAX_ID = 16

#: One valid definition of each kind, as a request body gives it.
VALID: dict[str, dict[str, Any]] = {
    "amount_over": {"kind": "amount_over", "customer_id": "C1", "amount_limit": 500},
    "new_merchant": {"kind": "new_merchant", "customer_id": "C1", "account_no": "A1", "lookback_days": 90},
    "merchant_monthly_cap": {
        "kind": "merchant_monthly_cap",
        "customer_id": "C1",
        "amount_limit": 20,
        "capped_merchant_category": "5818",
    },
    "notify_every_transaction": {"kind": "notify_every_transaction", "customer_id": "C1", "account_no": "A1"},
    "merchant_amount_over": {"kind": "merchant_amount_over", "merchant_id": "M-COFFEE", "amount_limit": 50},
    "merchant_daily_count": {"kind": "merchant_daily_count", "merchant_id": "M1", "amount_above": 20, "count_limit": 3},
}
MODEL_OF_KIND = {
    "amount_over": AmountOver,
    "new_merchant": NewMerchant,
    "merchant_monthly_cap": MerchantMonthlyCap,
    "notify_every_transaction": NotifyEveryTransaction,
    "merchant_amount_over": MerchantAmountOver,
    "merchant_daily_count": MerchantDailyCount,
}


def test_every_kind_has_a_valid_example() -> None:
    assert set(VALID) == set(RULE_KINDS) == set(MODEL_OF_KIND)


@pytest.mark.parametrize("kind", RULE_KINDS)
def test_each_kind_is_read_into_its_own_definition(kind: str) -> None:
    definition = checked_rule(VALID[kind], MAX_ID)
    assert type(definition) is MODEL_OF_KIND[kind]
    assert definition.kind == kind


def test_ids_are_stripped_and_numbers_given_as_text_are_read() -> None:
    """The CLI passes every parameter as text; the model converts it as it does JSON."""
    definition = checked_rule(
        {"kind": "merchant_monthly_cap", "customer_id": " C1 ", "amount_limit": "20.5", "capped_merchant_id": " M9 "},
        MAX_ID,
    )
    assert isinstance(definition, MerchantMonthlyCap)
    assert (definition.customer_id, definition.amount_limit, definition.capped_merchant_id) == ("C1", 20.5, "M9")
    assert checked_rule({**VALID["new_merchant"], "lookback_days": "30"}, MAX_ID).lookback_days == 30  # type: ignore[union-attr]


def test_new_merchant_looks_back_180_days_unless_told() -> None:
    definition = checked_rule({"kind": "new_merchant", "customer_id": "C1"}, MAX_ID)
    assert parameters_of(definition) == {"lookback_days": 180}


def without(kind: str, name: str) -> dict[str, Any]:
    return {key: value for key, value in VALID[kind].items() if key != name}


def edited(example: str, **fields: Any) -> dict[str, Any]:
    return {**VALID[example], **fields}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"customer_id": "C1", "amount_limit": 5}, "kind"),
        (edited("amount_over", kind="amount_under"), "kind"),
        (without("amount_over", "amount_limit"), "amount_limit"),
        (edited("amount_over", amount_limit=0), "amount_limit"),
        (edited("amount_over", amount_limit=-5), "amount_limit"),
        (edited("amount_over", amount_limit=float("inf")), "amount_limit"),
        (edited("amount_over", amount_limit=float("nan")), "amount_limit"),
        (edited("amount_over", amount_limit="lots"), "amount_limit"),
        (edited("amount_over", amount_limit=1e13), "amount_limit"),
        (without("amount_over", "customer_id"), "customer_id"),
        (edited("amount_over", customer_id="   "), "customer_id"),
        (edited("amount_over", customer_id="C" * (MAX_ID + 1)), "customer_id"),
        (edited("amount_over", account_no=" "), "account_no"),
        (edited("amount_over", account_no="A" * (MAX_ID + 1)), "account_no"),
        # An issuer's rule has no merchant of its own, and an acquirer's no customer.
        (edited("amount_over", merchant_id="M1"), "merchant_id"),
        (edited("merchant_amount_over", customer_id="C1"), "customer_id"),
        (without("merchant_amount_over", "merchant_id"), "merchant_id"),
        (edited("merchant_amount_over", merchant_id="M" * (MAX_ID + 1)), "merchant_id"),
        (edited("notify_every_transaction", amount_limit=5), "amount_limit"),
        (edited("new_merchant", lookback_days=0), "lookback_days"),
        (edited("new_merchant", lookback_days=3661), "lookback_days"),
        (edited("new_merchant", lookback_days=2.5), "lookback_days"),
        (without("merchant_monthly_cap", "capped_merchant_category"), "capped_merchant_id"),
        (edited("merchant_monthly_cap", capped_merchant_id="M1"), "capped_merchant_id"),
        (edited("merchant_monthly_cap", capped_merchant_category="58a8"), "capped_merchant_category"),
        # Exactly four digits: not found somewhere in a longer text.
        (edited("merchant_monthly_cap", capped_merchant_category="05818"), "capped_merchant_category"),
        (edited("merchant_monthly_cap", capped_merchant_category="MCC 5818"), "capped_merchant_category"),
        (
            {**without("merchant_monthly_cap", "capped_merchant_category"), "capped_merchant_id": "M" * (MAX_ID + 1)},
            "capped_merchant_id",
        ),
        (without("merchant_daily_count", "count_limit"), "count_limit"),
        (edited("merchant_daily_count", count_limit=-1), "count_limit"),
        (edited("merchant_daily_count", amount_above=-0.01), "amount_above"),
        (without("merchant_daily_count", "amount_above"), "amount_above"),
    ],
)
def test_a_bad_definition_names_its_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as refused:
        checked_rule(fields, MAX_ID)
    assert refused.value.field == field
    assert refused.value.message


def test_a_daily_count_may_count_every_transaction_and_notify_at_the_first() -> None:
    """amount_above 0 and count_limit 0 are limits, not missing values."""
    definition = checked_rule(edited("merchant_daily_count", amount_above=0, count_limit=0), MAX_ID)
    assert parameters_of(definition) == {"amount_above": 0.0, "count_limit": 0}


@pytest.mark.parametrize(
    ("fields", "scope"),
    [
        (VALID["amount_over"], (RuleScope.CUSTOMER, "C1")),
        (VALID["new_merchant"], (RuleScope.ACCOUNT, "A1")),
        (VALID["notify_every_transaction"], (RuleScope.ACCOUNT, "A1")),
        (VALID["merchant_monthly_cap"], (RuleScope.CUSTOMER, "C1")),
        (VALID["merchant_amount_over"], (RuleScope.MERCHANT, "M-COFFEE")),
        (VALID["merchant_daily_count"], (RuleScope.MERCHANT, "M1")),
    ],
)
def test_the_scope_is_the_account_when_an_issuer_rule_names_one(
    fields: dict[str, Any], scope: tuple[RuleScope, str]
) -> None:
    assert scope_of(checked_rule(fields, MAX_ID)) == scope


@pytest.mark.parametrize(
    ("kind", "parameters"),
    [
        ("amount_over", {"amount_limit": 500.0}),
        ("new_merchant", {"lookback_days": 90}),
        ("merchant_monthly_cap", {"amount_limit": 20.0, "capped_merchant_category": "5818"}),
        ("notify_every_transaction", {}),
        ("merchant_amount_over", {"amount_limit": 50.0}),
        ("merchant_daily_count", {"amount_above": 20.0, "count_limit": 3}),
    ],
)
def test_parameters_are_the_kinds_own_without_owner_or_kind(kind: str, parameters: dict[str, Any]) -> None:
    definition = checked_rule(VALID[kind], MAX_ID)
    assert parameters_of(definition) == parameters
    assert set(parameters) <= set(PARAMETERS)
    assert parameters_text(definition) == parameters_text(checked_rule(dict(reversed(VALID[kind].items())), MAX_ID))


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        ("amount_over", RuleAction.CONFIRM_CUSTOMER),
        ("new_merchant", RuleAction.CONFIRM_CUSTOMER),
        ("merchant_monthly_cap", RuleAction.CONFIRM_CUSTOMER),
        ("notify_every_transaction", RuleAction.NOTIFY_CUSTOMER),
        ("merchant_amount_over", RuleAction.CONFIRM_STAFF),
        ("merchant_daily_count", RuleAction.NOTIFY_MERCHANT),
    ],
)
def test_each_kind_asks_for_its_action(kind: str, action: RuleAction) -> None:
    rule = Rule(uuid.uuid4(), checked_rule(VALID[kind], MAX_ID), datetime.now(UTC))
    assert rule.action is action is ACTION_OF_KIND[RuleKind(kind)]


ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=MAX_ID)
amounts = st.floats(min_value=0.01, max_value=1e12, allow_nan=False, allow_infinity=False)
categories = st.from_regex(r"[0-9]{4}", fullmatch=True)


def _issuer(kind: str, **parameters: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"kind": st.just(kind), "customer_id": ids, **parameters}, optional={"account_no": ids}
    )


def _acquirer(kind: str, **parameters: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"kind": st.just(kind), "merchant_id": ids, **parameters})


definitions = st.one_of(
    _issuer("amount_over", amount_limit=amounts),
    _issuer("new_merchant", lookback_days=st.integers(1, 3660)),
    _issuer("merchant_monthly_cap", amount_limit=amounts, capped_merchant_id=ids),
    _issuer("merchant_monthly_cap", amount_limit=amounts, capped_merchant_category=categories),
    _issuer("notify_every_transaction"),
    _acquirer("merchant_amount_over", amount_limit=amounts),
    _acquirer("merchant_daily_count", amount_above=st.floats(0, 1e12), count_limit=st.integers(0, 10_000_000)),
)


@given(
    fields=definitions,
    rule_id=st.uuids(),
    created_at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
)
def test_a_stored_rule_reads_back_as_the_same_rule(
    fields: dict[str, Any], rule_id: uuid.UUID, created_at: datetime
) -> None:
    rule = Rule(rule_id, checked_rule(fields, MAX_ID), created_at)
    row = rule.as_row()
    assert set(row) == set(RULE_COLUMNS)
    assert (row["scope"], row["scope_id"]) == tuple(scope_of(rule.definition))
    assert all(row[name] is None for name in (*OWNER_FIELDS, *PARAMETERS) if name not in fields)
    # The driver gives back a naive time meaning UTC, to the millisecond.
    read = Rule.from_row({**row, "created_at": row["created_at"].replace(tzinfo=None)})
    assert read == rule
    assert read.created_at == created_at.replace(microsecond=created_at.microsecond // 1000 * 1000)


def test_a_rule_keeps_its_creation_time_in_utc_to_the_millisecond() -> None:
    paris = timezone(timedelta(hours=1))
    rule = Rule(
        uuid.uuid4(), checked_rule(VALID["amount_over"], MAX_ID), datetime(2026, 11, 29, 13, 0, 0, 123456, paris)
    )
    assert rule.created_at == datetime(2026, 11, 29, 12, 0, 0, 123000, UTC)


RULE = uuid.UUID("6f1c1e0e-8a47-4c1b-9e2a-0d3c5f6a7b8c")
AT = datetime(2026, 11, 29, 12, 0, 0, 123456, UTC)


def test_a_hit_id_is_the_digest_of_the_text_the_job_hashes_too() -> None:
    """Spark computes the same id from the same text: rule|account|epoch millis|tranid."""
    text = f"{RULE}|ACC1|{int(datetime(2026, 11, 29, 12, tzinfo=UTC).timestamp()) * 1000 + 123}|T1"
    assert hit_id(RULE, "ACC1", AT, "T1") == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert (
        daily_hit_id(RULE, "M1", date(2026, 11, 29))
        == (hashlib.sha256(f"{RULE}|M1|2026-11-29".encode()).hexdigest()[:32])
    )


def test_a_hit_id_is_the_same_for_the_same_hit_however_its_time_is_given() -> None:
    assert hit_id(RULE, "ACC1", AT, "T1") == hit_id(str(RULE), "ACC1", AT, "T1")
    assert hit_id(RULE, "ACC1", AT, "T1") == hit_id(RULE, "ACC1", AT.replace(tzinfo=None), "T1")
    # Cassandra keeps the millisecond: the microseconds a replay loses change nothing.
    assert hit_id(RULE, "ACC1", AT, "T1") == hit_id(RULE, "ACC1", AT.replace(microsecond=123000), "T1")
    assert hit_id(RULE, "ACC1", AT, "T1") == hit_id(RULE, "ACC1", AT.astimezone(timezone(timedelta(hours=-5))), "T1")


def test_hit_ids_differ_in_each_part() -> None:
    other_rule = uuid.UUID(int=RULE.int + 1)
    ids_ = {
        hit_id(RULE, "ACC1", AT, "T1"),
        hit_id(other_rule, "ACC1", AT, "T1"),
        hit_id(RULE, "ACC2", AT, "T1"),
        hit_id(RULE, "ACC1", AT + timedelta(milliseconds=1), "T1"),
        hit_id(RULE, "ACC1", AT, "T2"),
        # The separator keeps parts apart: "ACC1|2" + "T" is not "ACC1" + "2|T".
        hit_id(RULE, "ACC1|1795953600123", AT, "T1"),
        daily_hit_id(RULE, "M1", AT.date()),
        daily_hit_id(other_rule, "M1", AT.date()),
        daily_hit_id(RULE, "M2", AT.date()),
        daily_hit_id(RULE, "M1", AT.date() + timedelta(days=1)),
    }
    assert len(ids_) == 10
    assert all(len(found) == 32 for found in ids_)


@pytest.mark.parametrize(
    ("kind", "amount", "value", "limit", "text"),
    [
        ("amount_over", 600.0, 600.0, 500.0, "amount 600.00 is over the customer's limit of 500.00"),
        (
            "new_merchant",
            12.5,
            3.0,
            180.0,
            "first transaction at this merchant in 180 days (3 at others; amount 12.50)",
        ),
        (
            "merchant_monthly_cap",
            4.99,
            21.97,
            20.0,
            "month-to-date spend 21.97 (with this 4.99) is over the monthly cap of 20.00",
        ),
        ("notify_every_transaction", 3.2, None, None, "transaction of 3.20"),
        (
            "merchant_amount_over",
            75.0,
            75.0,
            50.0,
            "amount 75.00 is over the merchant's staff-confirmation limit of 50.00",
        ),
        (
            "merchant_daily_count",
            25.0,
            4.0,
            3.0,
            "4 transactions today over the amount threshold, more than 3",
        ),
    ],
)
def test_each_kind_states_its_reason(
    kind: str, amount: float, value: float | None, limit: float | None, text: str
) -> None:
    assert reason(RuleKind(kind), amount, value, limit) == text
