"""POST /authorize: a transaction judged before it posts (:mod:`fraudshop.model.authorization`), from the
state the stream keeps in Cassandra, read in a few rounds of parallel asynchronous requests; its decision
recorded in ``authorization``."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, field_validator

from fraudshop.config import Config
from fraudshop.io.cassandra.authorization import AuthorizationStore
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.io.cassandra.session import CASSANDRA_UNAVAILABLE
from fraudshop.model.authorization import (
    Authorization,
    Decision,
    DecisionPolicy,
    Signal,
    StoredState,
    authorize,
    transaction_day,
    vectorised,
)
from fraudshop.model.cases import KnownCases
from fraudshop.model.changes import InvalidField, checked_id, to_cassandra_time
from fraudshop.model.features import DAY_MICROS, HISTORY_DAYS
from fraudshop.model.records import CHANNELS, is_merchant_category
from fraudshop.model.risk import ConfirmedFrauds, MerchantTotals, RiskModel, share_days_to_read
from fraudshop.model.rule_evaluation import history_since
from fraudshop.model.rules import NewMerchant, Rule, RuleKind, RuleScope

log = logging.getLogger(__name__)

#: Cassandra's ANN search is approximate: it can rank a nearer case below a farther one (seen with 60 cases).
#: It is asked for this many candidates per nearest case; :func:`authorize` ranks them by their exact cosine
#: and keeps the nearest, as the stream's exact search would.
ANN_CANDIDATES_PER_CASE = 4


class TransactionIn(BaseModel):
    """A card transaction before it posts, with the fields the stream's records carry."""

    account_no: str
    tranid: str = Field(description="The transaction's id, unique per account")
    tranpostdt: datetime | None = Field(default=None, description="ISO-8601; naive = UTC. Default: now.")
    amount: float = Field(description="A finite number")
    merchant_id: str | None = Field(default=None, description="The acquirer's merchant id")
    merchant_category: str | None = Field(default=None, description="ISO 18245 code (MCC), four digits")
    channel: str | None = Field(default=None, description=f"One of {', '.join(CHANNELS)}")

    @field_validator("amount")
    @classmethod
    def _finite(cls, amount: float) -> float:
        if not math.isfinite(amount):
            raise ValueError("amount is not finite")
        return amount

    @field_validator("merchant_category")
    @classmethod
    def _category(cls, category: str | None) -> str | None:
        if category is not None and not is_merchant_category(category):
            raise ValueError("merchant_category is not an ISO 18245 merchant category code (four digits)")
        return category

    @field_validator("channel")
    @classmethod
    def _channel(cls, channel: str | None) -> str | None:
        if channel is not None and channel not in CHANNELS:
            raise ValueError(f"channel is not one of {', '.join(CHANNELS)}")
        return channel


class ReasonOut(BaseModel):
    signal: Signal
    kind: str = Field(description="A rule kind, profile_change, similar_to_fraud or fraud_probability")
    outcome: Decision = Field(description="What this reason alone asks for")
    detail: str
    value: float | None
    limit: float | None
    rule_id: str | None
    action: str | None = Field(description="A rule's action, as its hit states it")


class NearCaseOut(BaseModel):
    case_id: str
    cosine: float


class AuthorizationOut(BaseModel):
    """The decision (the most severe outcome of its reasons) and the scores the stream would store."""

    decision: Decision
    reasons: list[ReasonOut]
    account_no: str
    tranpostdt: datetime
    tranid: str
    customer_id: str | None
    risk_score: float = Field(description="Similarity to known fraud, 0 to 1")
    nearest_cases: list[NearCaseOut]
    fraud_probability: float | None = Field(description="The risk model's; null before a model is trained")
    model_version: str | None
    decided_at: datetime


def policy_of(config: Config) -> DecisionPolicy:
    return DecisionPolicy(
        change_window_seconds=config.job.change_window_seconds,
        similarity_threshold=config.similarity.threshold,
        nearest=config.similarity.nearest_cases,
        feedback_delay_days=config.risk.feedback_delay_days,
        confirm_probability=config.authorize.confirm_probability,
        block_probability=config.authorize.block_probability,
    )


@dataclass(eq=False)
class Authorizer:
    """Reads what one transaction's signals need and judges it. The known cases' confirmed frauds and the
    newest model are held and re-read every ``refresh_seconds`` (:meth:`keep_fresh`); the rest is read for
    each transaction: its account's holder, rules, changes and history, its merchant's rules (and the day's
    transactions for a daily count, the daily totals for a fraud share), then its nearest cases by ANN."""

    store: AuthorizationStore
    cases: CaseStore
    models: ModelStore
    policy: DecisionPolicy
    refresh_seconds: float
    #: The confirmed frauds and the newest model, replaced together: a request takes both at its start.
    _held: tuple[ConfirmedFrauds, RiskModel | None] = field(default=(ConfirmedFrauds.none(), None), init=False)

    def refresh(self) -> None:
        """Re-read the known cases' confirmed frauds and the newest model (blocking: run off the event loop)."""
        self._held = (KnownCases.of(self.cases.all_cases()).confirmed, self.models.current())

    async def keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as error:  # Cassandra restarting, a row it cannot read: the next refresh tries again
                log.warning("could not re-read the known cases and the model, keeping the last ones: %s", error)

    async def state_of(self, record: dict[str, Any], frauds: ConfirmedFrauds) -> StoredState:
        account, merchant = record["account_no"], record.get("merchant_id")
        at: datetime = record["tranpostdt"]
        totals = self._totals_needed(record, frauds)
        # Two rounds, three when a customer's rule looks back further than the account's and merchant's: the
        # history every transaction needs (its month and the vector's 30 days) is read with the first; the
        # customer's rules wait for the holder, the merchant's day for its rules, older history for a lookback.
        recent_since = history_since(at, HISTORY_DAYS)
        holder, account_rules, merchant_rules, changes, counted, recent = await asyncio.gather(
            self.store.holder(account),
            self.store.rules(RuleScope.ACCOUNT, account),
            self.store.rules(RuleScope.MERCHANT, merchant) if merchant else _nothing(),
            self.store.changes(account),
            self.store.merchant_totals(merchant, *totals) if merchant and totals else _no_totals(),
            self.store.history(account, recent_since),
        )
        known_since = history_since(at, max(HISTORY_DAYS, _longest_lookback([*account_rules, *merchant_rules])))
        counts_daily = any(r.kind is RuleKind.MERCHANT_DAILY_COUNT for r in merchant_rules)
        customer_rules, merchant_day, older = await asyncio.gather(
            self.store.rules(RuleScope.CUSTOMER, holder) if holder else _nothing(),
            self.store.merchant_day(merchant, at.date()) if merchant and counts_daily else _nothing(),
            self.store.history(account, known_since, recent_since) if known_since < recent_since else _nothing(),
        )
        since = history_since(at, max(HISTORY_DAYS, _longest_lookback(customer_rules)))
        if since < known_since:
            older = [*await self.store.history(account, since, known_since), *older]
        rules: list[Rule] = [*account_rules, *customer_rules, *merchant_rules]
        history = [*older, *recent]
        merchant_totals = (
            MerchantTotals(
                np.array([merchant] * len(counted), dtype=object),
                np.array(list(counted), dtype=np.int64),
                np.array(list(counted.values()), dtype=np.int64),
            )
            if counted
            else MerchantTotals.none()
        )
        return StoredState(holder, rules, history, changes, merchant_day, frauds, merchant_totals)

    def _totals_needed(self, record: dict[str, Any], frauds: ConfirmedFrauds) -> tuple[int, int] | None:
        """The days of the merchant's totals the fraud shares read, if it had a confirmed fraud in them
        (a share is 0 elsewhere, as in the stream)."""
        merchant = record.get("merchant_id")
        if merchant is None or not len(frauds):
            return None
        fraud_days: list[int] = np.sort(frauds.happened_micros[frauds.merchant_ids == merchant] // DAY_MICROS).tolist()
        return share_days_to_read(transaction_day(record), fraud_days, self.policy.feedback_delay_days)

    async def authorization_of(self, record: dict[str, Any]) -> tuple[StoredState, Authorization]:
        frauds, model = self._held  # one refresh's, whatever refresh lands while the state is read
        state = await self.state_of(record, frauds)
        transaction = vectorised(record, state)
        candidates = self.policy.nearest * ANN_CANDIDATES_PER_CASE
        nearest = await self.store.nearest(transaction.vector.tolist(), candidates)
        return state, authorize(record, state, transaction, nearest, model, self.policy)


def _longest_lookback(rules: list[Rule]) -> int:
    """The longest history any of ``rules`` looks back at (a new merchant's lookback), in days."""
    return max((r.definition.lookback_days for r in rules if isinstance(r.definition, NewMerchant)), default=0)


async def _nothing() -> list[Any]:
    return []


async def _no_totals() -> dict[int, int]:
    return {}


def _authorizer(request: Request) -> Authorizer:
    return request.app.state.authorizer  # type: ignore[no-any-return]


#: The app's :class:`Authorizer` (module level: the routes' annotations are resolved in this module).
Judge = Annotated[Authorizer, Depends(_authorizer)]


def authorize_routes(config: Config, protected: list[Any]) -> APIRouter:
    """The /authorize route; the app's lifespan puts an :class:`Authorizer` in ``app.state.authorizer``."""
    router = APIRouter()

    @router.post("/authorize", dependencies=protected, tags=["authorize"], response_model=AuthorizationOut)
    async def post_authorize(transaction: TransactionIn, judge: Judge) -> AuthorizationOut:
        """Judge a transaction before it posts: ``allow``, ``confirm`` (the customer or the merchant's staff
        confirms it first) or ``block``, with every reason; the decision is recorded in ``authorization``."""
        record = _record_of(transaction, config)
        try:
            state, outcome = await judge.authorization_of(record)
            decided_at = await judge.store.record(record, state.holder, outcome)
        except CASSANDRA_UNAVAILABLE as error:
            log.warning("authorization of %s/%s not decided: %s", record["account_no"], record["tranid"], error)
            # The row may be written or not: deciding the same transaction again rewrites it.
            detail = f"Cassandra is unavailable ({error}): no decision was returned, try again"
            raise HTTPException(503, detail=detail) from None
        return AuthorizationOut(
            decision=outcome.decision,
            reasons=[ReasonOut(**vars(reason)) for reason in outcome.reasons],
            account_no=record["account_no"],
            tranpostdt=record["tranpostdt"],
            tranid=record["tranid"],
            customer_id=state.holder,
            risk_score=outcome.risk_score,
            nearest_cases=[
                NearCaseOut(case_id=case_id, cosine=cosine)
                for case_id, cosine in zip(outcome.nearest_cases, outcome.nearest_cosines, strict=True)
            ],
            fraud_probability=outcome.fraud_probability,
            model_version=outcome.model_version,
            decided_at=decided_at,
        )

    return router


def _record_of(transaction: TransactionIn, config: Config) -> dict[str, Any]:
    """The transaction as the stream's records carry it; a 422 naming the field for what the schema cannot say."""
    try:
        account = checked_id("account_no", transaction.account_no, config.api.max_id_length)
        tranid = checked_id("tranid", transaction.tranid, config.api.max_id_length)
        merchant = (
            None
            if transaction.merchant_id is None
            else checked_id("merchant_id", transaction.merchant_id, config.api.max_id_length)
        )
    except InvalidField as error:
        raise HTTPException(422, detail=[{"loc": ["body", error.field], "msg": error.message}]) from None
    now = datetime.now(UTC)
    at = now if transaction.tranpostdt is None else transaction.tranpostdt
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if at > now + config.api.max_future_skew:
        raise HTTPException(
            422, detail=[{"loc": ["body", "tranpostdt"], "msg": "tranpostdt is later than now allows"}]
        ) from None
    return {
        "account_no": account,
        "tranid": tranid,
        "tranpostdt": to_cassandra_time(at),
        "amount": transaction.amount,
        "merchant_id": merchant,
        "merchant_category": transaction.merchant_category,
        "channel": transaction.channel,
    }
