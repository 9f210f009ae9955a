"""Fraud-prevention rules: the issuers' rules (a customer's, or one account's) and the acquirers' (a
merchant's), each a kind with typed, validated parameters, and what a hit of each one asks for.

One definition serves the API's request body, the CLI, the stored ``rule`` row and the job's evaluation
(:mod:`fraudshop.transforms.rules`); the exact semantics of each kind are in ``docs/rules.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, model_validator

from fraudshop.model.changes import InvalidField, as_utc, checked_id, to_cassandra_time
from fraudshop.model.records import MERCHANT_CATEGORY_PATTERN


class RuleKind(StrEnum):
    # The issuers' rules: a customer's, on every account they hold, or on one of them.
    AMOUNT_OVER = "amount_over"
    NEW_MERCHANT = "new_merchant"
    MERCHANT_MONTHLY_CAP = "merchant_monthly_cap"
    NOTIFY_EVERY_TRANSACTION = "notify_every_transaction"
    # The acquirers' rules: a merchant's.
    MERCHANT_AMOUNT_OVER = "merchant_amount_over"
    MERCHANT_DAILY_COUNT = "merchant_daily_count"


class RuleAction(StrEnum):
    """What a hit asks for."""

    CONFIRM_CUSTOMER = "confirm_customer"
    CONFIRM_STAFF = "confirm_staff"
    NOTIFY_CUSTOMER = "notify_customer"
    NOTIFY_MERCHANT = "notify_merchant"


class RuleScope(StrEnum):
    """Whose transactions a rule watches: the key the job finds it by."""

    CUSTOMER = "customer"
    ACCOUNT = "account"
    MERCHANT = "merchant"


RULE_KINDS: tuple[str, ...] = tuple(kind.value for kind in RuleKind)
ISSUER_KINDS: frozenset[RuleKind] = frozenset(
    {RuleKind.AMOUNT_OVER, RuleKind.NEW_MERCHANT, RuleKind.MERCHANT_MONTHLY_CAP, RuleKind.NOTIFY_EVERY_TRANSACTION}
)
ACTION_OF_KIND: dict[RuleKind, RuleAction] = {
    RuleKind.AMOUNT_OVER: RuleAction.CONFIRM_CUSTOMER,
    RuleKind.NEW_MERCHANT: RuleAction.CONFIRM_CUSTOMER,
    RuleKind.MERCHANT_MONTHLY_CAP: RuleAction.CONFIRM_CUSTOMER,
    RuleKind.NOTIFY_EVERY_TRANSACTION: RuleAction.NOTIFY_CUSTOMER,
    RuleKind.MERCHANT_AMOUNT_OVER: RuleAction.CONFIRM_STAFF,
    RuleKind.MERCHANT_DAILY_COUNT: RuleAction.NOTIFY_MERCHANT,
}
#: Each kind's reason, as a hit and its notification state it: a java.util.Formatter pattern (Spark's
#: format_string) of 1 the transaction's amount, 2 the evidence's value, 3 its limit.
REASON_OF_KIND: dict[RuleKind, str] = {
    RuleKind.AMOUNT_OVER: "amount %1$.2f is over the customer's limit of %3$.2f",
    RuleKind.NEW_MERCHANT: "first transaction at this merchant in %3$.0f days (%2$.0f at others; amount %1$.2f)",
    RuleKind.MERCHANT_MONTHLY_CAP: "month-to-date spend %2$.2f (with this %1$.2f) is over the monthly cap of %3$.2f",
    RuleKind.NOTIFY_EVERY_TRANSACTION: "transaction of %1$.2f",
    RuleKind.MERCHANT_AMOUNT_OVER: "amount %1$.2f is over the merchant's staff-confirmation limit of %3$.2f",
    RuleKind.MERCHANT_DAILY_COUNT: "%2$.0f transactions today over the amount threshold, more than %3$.0f",
}
_REASON_FIELD = re.compile(r"%([123])\$\.([02])f")


def reason(kind: RuleKind, amount: float, value: float | None, limit: float | None) -> str:
    """:data:`REASON_OF_KIND`'s text for a hit, as Spark's format_string writes it."""
    values = (amount, value, limit)
    return _REASON_FIELD.sub(lambda m: f"{values[int(m[1]) - 1]:.{m[2]}f}", REASON_OF_KIND[kind])


#: The ids a rule names: stripped, not empty (their length limit is the API's, see :func:`checked_rule`).
RuleId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: A finite amount above zero, in the account's currency.
PositiveAmount = Annotated[float, Field(gt=0, allow_inf_nan=False, le=1e12)]
#: Anchored: pydantic's pattern matches anywhere in the text (05818 would pass as 5818's pattern).
MerchantCategory = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=f"^{MERCHANT_CATEGORY_PATTERN.pattern}$")
]
#: The longest lookback new_merchant accepts: ten years (the transaction table's history).
MAX_LOOKBACK_DAYS = 3660


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _IssuerRule(_Rule):
    customer_id: RuleId = Field(description="The customer whose rule it is")
    account_no: RuleId | None = Field(
        default=None, description="Only this account of the customer's; absent: every account the customer holds"
    )


class _AcquirerRule(_Rule):
    merchant_id: RuleId = Field(description="The merchant whose rule it is")


class AmountOver(_IssuerRule):
    """A transaction of more than ``amount_limit`` needs the customer's confirmation."""

    kind: Literal["amount_over"] = "amount_over"
    amount_limit: PositiveAmount = Field(description="Confirm transactions of more than this")


class NewMerchant(_IssuerRule):
    """A transaction at a merchant the account has no transaction at in the ``lookback_days`` before it
    needs the customer's confirmation."""

    kind: Literal["new_merchant"] = "new_merchant"
    lookback_days: int = Field(default=180, ge=1, le=MAX_LOOKBACK_DAYS, description="How far back history goes")


class MerchantMonthlyCap(_IssuerRule):
    """The account's spend at one merchant, or in one merchant category, in a UTC calendar month must not
    exceed ``amount_limit``: the transaction that takes it over, and every one after it that month, need
    the customer's confirmation."""

    kind: Literal["merchant_monthly_cap"] = "merchant_monthly_cap"
    amount_limit: PositiveAmount = Field(description="The most the account may spend there in a month")
    # Not merchant_id: on every other kind that is the rule's own merchant (its scope).
    capped_merchant_id: RuleId | None = Field(default=None, description="The merchant capped")
    capped_merchant_category: MerchantCategory | None = Field(
        default=None, description="Or the merchant category capped (ISO 18245 MCC, four digits)"
    )

    @model_validator(mode="after")
    def _one_target(self) -> MerchantMonthlyCap:
        if (self.capped_merchant_id is None) == (self.capped_merchant_category is None):
            raise ValueError("give exactly one of capped_merchant_id and capped_merchant_category")
        return self


class NotifyEveryTransaction(_IssuerRule):
    """Every transaction is notified to the customer, as it is seen."""

    kind: Literal["notify_every_transaction"] = "notify_every_transaction"


class MerchantAmountOver(_AcquirerRule):
    """A transaction of more than ``amount_limit`` at the merchant needs a senior staff member's confirmation."""

    kind: Literal["merchant_amount_over"] = "merchant_amount_over"
    amount_limit: PositiveAmount = Field(description="Staff confirm transactions of more than this")


class MerchantDailyCount(_AcquirerRule):
    """The merchant is notified, once per UTC day, when its number of transactions of more than
    ``amount_above`` that day goes over ``count_limit``."""

    kind: Literal["merchant_daily_count"] = "merchant_daily_count"
    amount_above: float = Field(ge=0, le=1e12, allow_inf_nan=False, description="Count transactions of more than this")
    count_limit: int = Field(ge=0, le=10_000_000, description="Notify when the day's count goes over this")


RuleDefinition: TypeAlias = Annotated[
    AmountOver | NewMerchant | MerchantMonthlyCap | NotifyEveryTransaction | MerchantAmountOver | MerchantDailyCount,
    Field(discriminator="kind"),
]
RULE_DEFINITION: TypeAdapter[RuleDefinition] = TypeAdapter(RuleDefinition)

#: A stored rule's parameters: the fields a kind may have besides its kind and scope. Each is a column of
#: the ``rule`` table (NULL where the kind has none) and a key of a hit's ``rule_parameters``.
PARAMETERS: tuple[str, ...] = (
    "amount_limit",
    "lookback_days",
    "capped_merchant_id",
    "capped_merchant_category",
    "amount_above",
    "count_limit",
)
#: Who a rule belongs to (its scope's ids).
OWNER_FIELDS: tuple[str, ...] = ("customer_id", "account_no", "merchant_id")


def scope_of(definition: RuleDefinition) -> tuple[RuleScope, str]:
    """The (scope, id) the job finds the rule by: the account when an issuer rule names one, else the
    customer; the merchant for an acquirer rule."""
    if isinstance(definition, _IssuerRule):
        if definition.account_no is not None:
            return RuleScope.ACCOUNT, definition.account_no
        return RuleScope.CUSTOMER, definition.customer_id
    assert isinstance(definition, _AcquirerRule)
    return RuleScope.MERCHANT, definition.merchant_id


def parameters_of(definition: RuleDefinition) -> dict[str, Any]:
    """The parameters the rule sets, in :data:`PARAMETERS` order, as a hit records them (``rule_parameters``)."""
    fields = definition.model_dump()
    return {name: fields[name] for name in PARAMETERS if fields.get(name) is not None}


def parameters_text(definition: RuleDefinition) -> str:
    """:func:`parameters_of` as compact JSON: the text the job writes (Spark's to_json of the same fields)."""
    return json.dumps(parameters_of(definition), separators=(",", ":"))


#: The field named when a check of several fields fails (pydantic gives such errors no location).
_WHOLE_RULE_FIELD: dict[Any, str] = {RuleKind.MERCHANT_MONTHLY_CAP.value: "capped_merchant_id"}


def checked_rule(fields: dict[str, Any], max_id_length: int) -> RuleDefinition:
    """A rule definition from request fields, or :class:`InvalidField` naming the first bad field (its
    dotted path within the definition)."""
    try:
        definition = RULE_DEFINITION.validate_python(fields)
    except ValidationError as error:
        first = error.errors()[0]
        # A union's error path starts with the kind tag (e.g. ('amount_over', 'amount_limit')): drop it.
        location = ".".join(str(part) for part in first["loc"] if str(part) not in RULE_KINDS)
        kind = fields.get("kind")
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            raise InvalidField("kind", f"kind must be one of {', '.join(RULE_KINDS)}") from None
        # A check of several fields has no location of its own: name the field the kind is about.
        raise InvalidField(location or _WHOLE_RULE_FIELD.get(kind, "kind"), first["msg"]) from None
    for name in (*OWNER_FIELDS, "capped_merchant_id"):
        value = getattr(definition, name, None)
        if value is not None:
            checked_id(name, value, max_id_length)
    return definition


@dataclass(frozen=True)
class Rule:
    """A stored rule: its definition, its id and when it was created (it applies from then on)."""

    rule_id: uuid.UUID
    definition: RuleDefinition
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", to_cassandra_time(as_utc(self.created_at)))

    @property
    def kind(self) -> RuleKind:
        return RuleKind(self.definition.kind)

    @property
    def action(self) -> RuleAction:
        return ACTION_OF_KIND[self.kind]

    def as_row(self) -> dict[str, Any]:
        """The ``rule`` table's row (RULE_COLUMNS in :mod:`fraudshop.model.tables`)."""
        scope, scope_id = scope_of(self.definition)
        fields = self.definition.model_dump()
        return {
            "scope": scope.value,
            "scope_id": scope_id,
            "rule_id": self.rule_id,
            "kind": self.kind.value,
            **{name: fields.get(name) for name in (*OWNER_FIELDS, *PARAMETERS)},
            "created_at": self.created_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Rule:
        fields = {name: row[name] for name in ("kind", *OWNER_FIELDS, *PARAMETERS) if row.get(name) is not None}
        return cls(row["rule_id"], RULE_DEFINITION.validate_python(fields), row["created_at"])


def hit_id(rule_id: uuid.UUID | str, account_no: str, tranpostdt: datetime, tranid: str) -> str:
    """A hit's (and its notification's) id: the same for the same rule and transaction, whichever batch or
    replay finds it, so a consumer drops the repeats at-least-once delivery brings. The job computes the
    same (sha-256 of the same text) in Spark."""
    millis = math.floor(as_utc(tranpostdt).timestamp() * 1000)
    return _digest(f"{rule_id}|{account_no}|{millis}|{tranid}")


def daily_hit_id(rule_id: uuid.UUID | str, merchant_id: str, day: date) -> str:
    """A daily count's hit id: one per rule, merchant and UTC day."""
    return _digest(f"{rule_id}|{merchant_id}|{day.isoformat()}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
