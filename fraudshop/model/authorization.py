"""The pre-authorization decision: one transaction, before it posts, judged by every signal of the stream
from the same stored state and with the same functions (the rules of :mod:`~fraudshop.model.rule_evaluation`,
the profile-change window, the vector of :mod:`~fraudshop.model.features`, the similarity score of
:mod:`~fraudshop.model.cases` and the risk model of :mod:`~fraudshop.model.risk`), then answered
``allow``, ``confirm`` or ``block`` with every reason. Pure: the service reads the state and writes the
decision (``docs/authorize.md`` states the policy)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np

from fraudshop.model.cases import SIMILARITY_ACTION, SIMILARITY_KIND, SIMILARITY_RULE_ID, risk_scores
from fraudshop.model.features import (
    DAY_MICROS,
    KnownTransactions,
    Transactions,
    history_context,
    micros_of,
    vectors_of_arrays,
)
from fraudshop.model.risk import (
    RISK_FEATURE_SET,
    ConfirmedFrauds,
    MerchantTotals,
    RiskModel,
    risk_features_of,
)
from fraudshop.model.rule_evaluation import Txn, judge_batch
from fraudshop.model.rules import ACTION_OF_KIND, RuleAction, RuleKind, reason
from fraudshop.model.rules import Rule as RuleOfState


class Decision(StrEnum):
    """What the card authorization does with the transaction, least to most severe."""

    ALLOW = "allow"
    CONFIRM = "confirm"  # the customer (or the merchant's staff) confirms it before it posts
    BLOCK = "block"


_SEVERITY = {decision: rank for rank, decision in enumerate(Decision)}


class Signal(StrEnum):
    RULE = "rule"
    PROFILE_CHANGE = "profile_change"
    SIMILARITY = "similarity"
    RISK_MODEL = "risk_model"


#: What a rule's hit asks of the authorization: a confirmation holds it, a notification lets it through.
OUTCOME_OF_ACTION: dict[RuleAction, Decision] = {
    RuleAction.CONFIRM_CUSTOMER: Decision.CONFIRM,
    RuleAction.CONFIRM_STAFF: Decision.CONFIRM,
    RuleAction.NOTIFY_CUSTOMER: Decision.ALLOW,
    RuleAction.NOTIFY_MERCHANT: Decision.ALLOW,
}
PROFILE_CHANGE_KIND = "profile_change"
FRAUD_PROBABILITY_KIND = "fraud_probability"


@dataclass(frozen=True)
class Reason:
    """One signal that fired, what it asks (``outcome``) and its evidence."""

    signal: Signal
    kind: str  # a rule kind, profile_change, similar_to_fraud or fraud_probability
    outcome: Decision
    detail: str
    value: float | None = None
    limit: float | None = None
    rule_id: str | None = None
    action: str | None = None  # a rule's action, as its hit states it


@dataclass(frozen=True)
class DecisionPolicy:
    """The thresholds of the signals that are scores (the rules and the profile change are their own)."""

    change_window_seconds: int
    similarity_threshold: float
    nearest: int
    feedback_delay_days: int
    #: A fraud probability at or over this asks for a confirmation, at or over ``block_probability`` blocks.
    confirm_probability: float
    block_probability: float


@dataclass(frozen=True)
class NearCaseOf:
    """A known case near the transaction's vector, as Cassandra's ANN search returns it."""

    case_id: str
    cosine: float
    is_fraud: bool
    pattern: str | None


@dataclass(frozen=True)
class StoredState:
    """What Cassandra holds about the transaction's account and merchant, read before it is judged."""

    #: Who holds the account (None when no stored profile lists it).
    holder: str | None
    #: The rules in force over the account, its holder and the merchant.
    rules: Sequence[RuleOfState]
    #: The account's stored transactions, back to the longest window any signal reads.
    history: Sequence[Txn]
    #: The account's profile changes: (last_updated, change_type).
    changes: Sequence[tuple[datetime, str]]
    #: The merchant's stored transactions of the transaction's UTC day (read for its daily-count rules only).
    merchant_day: Sequence[Txn] = ()
    #: The frauds confirmed so far (the stream's risk features count them) and the merchant's daily totals.
    frauds: ConfirmedFrauds = field(default_factory=ConfirmedFrauds.none)
    merchant_totals: MerchantTotals = field(default_factory=MerchantTotals.none)


@dataclass(frozen=True)
class Vectorised:
    """The transaction as the signals see it: its inputs, its context from the history, its vector."""

    inputs: Transactions  # one row
    context: np.ndarray  # (1, len(CONTEXT_COLUMNS))
    vector: np.ndarray  # (VECTOR_DIMENSIONS,) float32


@dataclass(frozen=True)
class Authorization:
    """The decision and every reason for it, with the scores the stream would store for the transaction."""

    decision: Decision
    reasons: tuple[Reason, ...]
    vector: tuple[float, ...]
    risk_score: float
    nearest_cases: tuple[str, ...]
    nearest_cosines: tuple[float, ...]
    risk_features: tuple[float, ...]
    risk_feature_set: str
    fraud_probability: float | None
    model_version: str | None


def decision_of(reasons: Sequence[Reason]) -> Decision:
    """The most severe outcome any reason asks for; allow without one."""
    return max((reason.outcome for reason in reasons), key=_SEVERITY.__getitem__, default=Decision.ALLOW)


def as_txn(record: Mapping[str, object]) -> Txn:
    """The rules' view of a transaction record (``tranpostdt`` an aware datetime)."""
    at = record["tranpostdt"]
    assert isinstance(at, datetime)
    return Txn(
        str(record["account_no"]),
        at,
        str(record["tranid"]),
        float(record["amount"]),  # type: ignore[arg-type]
        _text(record.get("merchant_id")),
        _text(record.get("merchant_category")),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def vectorised(record: Mapping[str, object], state: StoredState) -> Vectorised:
    """The record's context and vector against the account's stored history and changes: the stream's
    functions (:func:`~fraudshop.model.features.history_context`,
    :func:`~fraudshop.model.features.vectors_of_arrays`), given the history as the stream's batch of one
    would see it, built without pandas (whose per-call cost is milliseconds)."""
    txn = as_txn(record)
    # Each key once, as the stream keeps it: the record itself over a stored copy, then the first read.
    stored = {t.key: t for t in reversed(state.history) if not math.isnan(t.amount)}
    stored.pop(txn.key, None)
    known = [*stored.values(), txn]
    merchant_codes: dict[str, int] = {}
    merchants = [
        -1 if t.merchant_id is None else merchant_codes.setdefault(t.merchant_id, len(merchant_codes)) for t in known
    ]
    # One event per change time, as in the stream (a change touches several fields).
    change_at = np.array(sorted({micros_of(at) for at, _ in state.changes}), dtype=np.int64)
    history = KnownTransactions(
        account=np.zeros(len(known), dtype=np.int64),
        at=np.array([micros_of(t.tranpostdt) for t in known], dtype=np.int64),
        tranid=np.array([t.tranid for t in known], dtype=str),
        amount=np.array([t.amount for t in known], dtype=float),
        merchant=np.array(merchants, dtype=np.int64),
        change_account=np.zeros(len(change_at), dtype=np.int64),
        change_at=change_at,
    )
    inputs = Transactions.of_records([record])
    context = history_context(history, np.array([len(known) - 1]))
    return Vectorised(inputs, context, vectors_of_arrays(inputs, context)[0])


def transaction_day(record: Mapping[str, object]) -> int:
    """The record's UTC day number."""
    return micros_of(as_txn(record).tranpostdt) // DAY_MICROS


def authorize(
    record: Mapping[str, object],
    state: StoredState,
    transaction: Vectorised,
    nearest: Sequence[NearCaseOf],
    model: RiskModel | None,
    policy: DecisionPolicy,
) -> Authorization:
    """Judge ``record`` (a transaction before it posts, ``tranpostdt`` aware) by every signal, from the
    stored ``state``, its ``transaction`` vector (:func:`vectorised`) and the known cases ``nearest`` it."""
    txn = as_txn(record)
    reasons = [*_rule_reasons(txn, state), *_change_reasons(txn, state, policy)]
    cosines = np.full((1, policy.nearest), np.nan, dtype=np.float32)  # the stream's exact search's precision
    is_fraud = np.zeros((1, policy.nearest), dtype=bool)
    ranked = sorted(nearest, key=lambda case: -case.cosine)[: policy.nearest]
    for column, case in enumerate(ranked):
        cosines[0, column], is_fraud[0, column] = case.cosine, case.is_fraud
    score = risk_scores(cosines, is_fraud)
    if score[0] >= policy.similarity_threshold:
        reasons.append(_similarity_reason(float(score[0]), policy.similarity_threshold, ranked[0]))
    features = risk_features_of(
        transaction.inputs, transaction.context, score, state.frauds, state.merchant_totals, policy.feedback_delay_days
    )
    applies = model is not None and model.applies_to(RISK_FEATURE_SET)
    probability = float(model.probabilities(features)[0]) if applies and model is not None else None
    if probability is not None and probability >= policy.confirm_probability:
        reasons.append(_probability_reason(probability, policy, model.version if model else ""))
    return Authorization(
        decision_of(reasons),
        tuple(reasons),
        tuple(float(value) for value in transaction.vector),
        float(score[0]),
        tuple(case.case_id for case in ranked),
        tuple(case.cosine for case in ranked),
        tuple(float(value) for value in features[0]),
        RISK_FEATURE_SET,
        probability,
        model.version if applies and model is not None else None,
    )


def _rule_reasons(txn: Txn, state: StoredState) -> list[Reason]:
    """The rules' hits on ``txn`` itself, as the stream's engine would find them were it in a batch of its
    own: a merchant's daily count fires on the transaction that crosses it."""
    # The account's own rows last: a merchant-day row of the same transaction lacks its category.
    stored = {known.key: known for known in (*state.merchant_day, *state.history)}
    holders = {} if state.holder is None else {txn.account_no: state.holder}
    hits = judge_batch([txn], stored, state.rules, holders, done=set())
    reasons = []
    for hit in sorted(hits, key=lambda hit: (hit.kind, hit.rule_id)):
        if (hit.account_no, hit.tranpostdt, hit.tranid) != txn.key:
            continue
        kind = RuleKind(hit.kind)
        action = ACTION_OF_KIND[kind]
        reasons.append(
            Reason(
                Signal.RULE,
                kind.value,
                OUTCOME_OF_ACTION[action],
                reason(kind, hit.amount, hit.evidence_value, hit.evidence_limit),
                hit.evidence_value,
                hit.evidence_limit,
                hit.rule_id,
                action.value,
            )
        )
    return reasons


def _change_reasons(txn: Txn, state: StoredState, policy: DecisionPolicy) -> list[Reason]:
    """The original rule: a profile change at most the window before the transaction (the latest one)."""
    window = timedelta(seconds=policy.change_window_seconds)
    within = [(at, kind) for at, kind in state.changes if at <= txn.tranpostdt < at + window]
    if not within:
        return []
    at, kind = max(within)
    hours = (txn.tranpostdt - at).total_seconds() / 3600
    detail = f"{kind} changed on the profile {hours:.1f} h before (window {policy.change_window_seconds / 3600:g} h)"
    limit = window.total_seconds() / 3600
    return [Reason(Signal.PROFILE_CHANGE, PROFILE_CHANGE_KIND, Decision.CONFIRM, detail, hours, limit)]


def _similarity_reason(score: float, threshold: float, nearest: NearCaseOf) -> Reason:
    detail = (
        f"similar to known fraud: score {score:.2f} over {threshold:.2f} "
        f"(nearest case: {nearest.pattern}, cosine {nearest.cosine:.2f})"
    )
    return Reason(
        Signal.SIMILARITY,
        SIMILARITY_KIND,
        Decision.CONFIRM,
        detail,
        score,
        threshold,
        str(SIMILARITY_RULE_ID),
        SIMILARITY_ACTION,
    )


def _probability_reason(probability: float, policy: DecisionPolicy, version: str) -> Reason:
    blocks = probability >= policy.block_probability
    limit = policy.block_probability if blocks else policy.confirm_probability
    detail = f"fraud probability {probability:.3f} at or over {limit:.3f} (model {version})"
    outcome = Decision.BLOCK if blocks else Decision.CONFIRM
    return Reason(Signal.RISK_MODEL, FRAUD_PROBABILITY_KIND, outcome, detail, probability, limit)
