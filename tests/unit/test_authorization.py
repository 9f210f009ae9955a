"""The pre-authorization decision (:mod:`fraudshop.model.authorization`): each signal's reason and outcome,
the most severe outcome winning, and the stream's own functions giving the vector and the features."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudshop.config import load_config
from fraudshop.model.authorization import (
    Decision,
    DecisionPolicy,
    NearCaseOf,
    Reason,
    Signal,
    StoredState,
    authorize,
    decision_of,
    vectorised,
)
from fraudshop.model.cases import SIMILARITY_KIND
from fraudshop.model.features import (
    events_frame,
    transaction_context,
    transaction_vectors,
    transactions_frame,
    vectors_of,
)
from fraudshop.model.risk import (
    RISK_FEATURES,
    ConfirmedFrauds,
    MerchantTotals,
    RiskModel,
    risk_features,
    risk_features_of,
)
from fraudshop.model.rule_evaluation import Txn
from fraudshop.model.rules import (
    AmountOver,
    MerchantDailyCount,
    MerchantMonthlyCap,
    NotifyEveryTransaction,
    Rule,
    RuleDefinition,
)
from fraudshop.service.api import create_app
from tests.risk_models import a_risk_model

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY = DecisionPolicy(
    change_window_seconds=86_400,
    similarity_threshold=0.8,
    nearest=3,
    feedback_delay_days=7,
    confirm_probability=0.2,
    block_probability=0.5,
)


def rule(definition: RuleDefinition, number: int = 1) -> Rule:
    return Rule(uuid.UUID(int=number), definition, NOW - timedelta(days=60))


def record(amount: float = 25.0, at: datetime = NOW, tranid: str = "T-NEW", merchant: str = "M1") -> dict[str, object]:
    return {
        "account_no": "A1",
        "tranid": tranid,
        "tranpostdt": at,
        "amount": amount,
        "merchant_id": merchant,
        "merchant_category": "5411",
        "channel": "pos",
    }


def stored(days_ago: float, amount: float = 20.0, merchant: str = "M1", tranid: str | None = None) -> Txn:
    at = NOW - timedelta(days=days_ago)
    return Txn("A1", at, tranid or f"T{days_ago}", amount, merchant, "5411")


HISTORY = tuple(stored(days) for days in (0.5, 1.5, 3, 6, 12))


def judged(
    state: StoredState,
    new: dict[str, object] | None = None,
    nearest: tuple[NearCaseOf, ...] = (),
    model: RiskModel | None = None,
) -> tuple[Decision, tuple[Reason, ...]]:
    transaction = new or record()
    outcome = authorize(transaction, state, vectorised(transaction, state), nearest, model, POLICY)
    return outcome.decision, outcome.reasons


def state(**fields: object) -> StoredState:
    values: dict[str, object] = {"holder": "C1", "rules": (), "history": HISTORY, "changes": ()}
    values.update(fields)
    return StoredState(**values)  # type: ignore[arg-type]


def model_with(intercept: float) -> RiskModel:
    return a_risk_model(NOW, intercept)


def test_without_a_signal_the_transaction_is_allowed_for_no_reason() -> None:
    assert judged(state()) == (Decision.ALLOW, ())


def test_the_most_severe_outcome_decides() -> None:
    def reason(outcome: Decision) -> Reason:
        return Reason(Signal.RULE, "amount_over", outcome, "")

    assert decision_of([reason(Decision.ALLOW), reason(Decision.BLOCK), reason(Decision.CONFIRM)]) is Decision.BLOCK
    assert decision_of([reason(Decision.ALLOW), reason(Decision.CONFIRM)]) is Decision.CONFIRM
    assert decision_of([]) is Decision.ALLOW


def test_an_issuers_amount_cap_asks_the_customer_to_confirm() -> None:
    cap = rule(AmountOver(customer_id="C1", amount_limit=100.0))
    decision, reasons = judged(state(rules=(cap,)), record(amount=150.0))
    assert decision is Decision.CONFIRM
    (reason,) = reasons
    assert (reason.signal, reason.kind, reason.rule_id, reason.action) == (
        Signal.RULE,
        "amount_over",
        str(cap.rule_id),
        "confirm_customer",
    )
    assert (reason.value, reason.limit) == (150.0, 100.0)
    assert reason.detail == "amount 150.00 is over the customer's limit of 100.00"
    assert judged(state(rules=(cap,)), record(amount=100.0)) == (Decision.ALLOW, ())


def test_another_customers_rule_does_not_apply() -> None:
    cap = rule(AmountOver(customer_id="C2", amount_limit=1.0))
    assert judged(state(rules=(cap,)), record(amount=150.0)) == (Decision.ALLOW, ())


def test_a_notification_rule_lets_the_transaction_through_with_its_reason() -> None:
    decision, reasons = judged(state(rules=(rule(NotifyEveryTransaction(customer_id="C1")),)))
    assert decision is Decision.ALLOW
    assert [(reason.kind, reason.outcome) for reason in reasons] == [("notify_every_transaction", Decision.ALLOW)]


def test_a_merchants_daily_count_fires_on_the_transaction_that_crosses_it_only() -> None:
    busy = rule(MerchantDailyCount(merchant_id="M1", amount_above=10.0, count_limit=2), 2)
    today = NOW.replace(hour=0)
    day_of = [Txn(f"B{n}", today + timedelta(hours=n), f"D{n}", 50.0, "M1", None) for n in range(1, 3)]
    earlier = HISTORY[1:]  # none today
    decision, reasons = judged(state(rules=(busy,), history=earlier, merchant_day=tuple(day_of)))
    assert decision is Decision.ALLOW  # the acquirer is notified; the card is not held
    assert [(reason.kind, reason.value, reason.limit) for reason in reasons] == [("merchant_daily_count", 3.0, 2.0)]
    crossed = (*day_of, Txn("B3", today + timedelta(hours=3), "D3", 50.0, "M1", None))
    assert judged(state(rules=(busy,), history=earlier, merchant_day=crossed)) == (Decision.ALLOW, ())


def test_a_category_cap_counts_the_accounts_own_rows_not_their_merchant_day_copies() -> None:
    # A daily-count rule reads the merchant's day too: its copy of the account's own row has no category.
    cap = rule(MerchantMonthlyCap(customer_id="C1", amount_limit=30.0, capped_merchant_category="5411"), 3)
    busy = rule(MerchantDailyCount(merchant_id="M1", amount_above=1_000.0, count_limit=100), 4)
    today = stored(0.1, amount=20.0)
    copy = Txn(today.account_no, today.tranpostdt, today.tranid, today.amount, "M1", None)
    decision, reasons = judged(state(rules=(cap, busy), history=(today,), merchant_day=(copy,)), record(amount=15.0))
    assert decision is Decision.CONFIRM
    assert [(reason.kind, reason.value) for reason in reasons] == [("merchant_monthly_cap", 35.0)]


def test_a_profile_change_within_the_window_asks_for_a_confirmation() -> None:
    changes = ((NOW - timedelta(hours=30), "phone"), (NOW - timedelta(hours=3), "email"))
    decision, reasons = judged(state(changes=changes))
    assert decision is Decision.CONFIRM
    (reason,) = reasons
    assert (reason.signal, reason.kind, reason.value, reason.limit) == (
        Signal.PROFILE_CHANGE,
        "profile_change",
        3.0,
        24.0,
    )
    assert reason.detail.startswith("email changed on the profile 3.0 h before")
    assert judged(state(changes=changes[:1])) == (Decision.ALLOW, ())
    # A change after the transaction is not in its window.
    assert judged(state(changes=((NOW + timedelta(minutes=1), "email"),))) == (Decision.ALLOW, ())


def test_similarity_to_known_fraud_over_the_threshold_asks_for_a_confirmation() -> None:
    close = (
        NearCaseOf("case-1", 0.99, True, "card_testing"),
        NearCaseOf("case-2", 0.97, True, "card_testing"),
        NearCaseOf("case-3", 0.95, True, "account_takeover"),
    )
    decision, reasons = judged(state(), nearest=close)
    assert decision is Decision.CONFIRM
    (reason,) = reasons
    assert (reason.signal, reason.kind, reason.limit) == (Signal.SIMILARITY, SIMILARITY_KIND, 0.8)
    assert reason.value == pytest.approx((0.99 + 0.97 + 0.95) / 3)
    assert "nearest case: card_testing, cosine 0.99" in reason.detail
    # Near genuine cases, or fraud ones not that near: no reason.
    genuine = tuple(NearCaseOf(case.case_id, case.cosine, False, None) for case in close)
    assert judged(state(), nearest=genuine) == (Decision.ALLOW, ())
    assert judged(state(), nearest=(NearCaseOf("case-1", 0.99, True, "x"), NearCaseOf("g", 0.9, False, None))) == (
        Decision.ALLOW,
        (),
    )


@pytest.mark.parametrize(
    ("intercept", "expected"),
    [(-5.0, Decision.ALLOW), (-1.0, Decision.CONFIRM), (0.5, Decision.BLOCK)],
)
def test_the_risk_models_probability_confirms_or_blocks(intercept: float, expected: Decision) -> None:
    model = model_with(intercept)  # every coefficient 0: the probability is the intercept's logistic
    transaction = record()
    outcome = authorize(transaction, state(), vectorised(transaction, state()), (), model, POLICY)
    assert outcome.fraud_probability == pytest.approx(1 / (1 + np.exp(-intercept)))
    assert outcome.model_version == model.version
    assert outcome.decision is expected
    assert [reason.kind for reason in outcome.reasons] == ([] if expected is Decision.ALLOW else ["fraud_probability"])


def test_without_a_model_there_is_no_probability_and_nothing_blocks() -> None:
    transaction = record(amount=9_999.0)
    outcome = authorize(transaction, state(), vectorised(transaction, state()), (), None, POLICY)
    assert (outcome.fraud_probability, outcome.model_version, outcome.decision) == (None, None, Decision.ALLOW)
    assert len(outcome.risk_features) == len(RISK_FEATURES)


def test_the_vector_is_the_streams_for_the_same_transaction_and_history() -> None:
    changes = ((NOW - timedelta(hours=5), "email"),)
    transaction = record()
    mine = vectorised(transaction, state(changes=changes)).vector
    history = transactions_frame(
        [
            {
                "account_no": t.account_no,
                "tranpostdt": t.tranpostdt,
                "tranid": t.tranid,
                "amount": t.amount,
                "merchant_id": t.merchant_id,
            }
            for t in HISTORY
        ]
    )
    theirs = vectors_of(transactions_frame([transaction]), events_frame(history, [("A1", at) for at, _ in changes]))
    np.testing.assert_array_equal(mine, theirs[0])


def test_the_api_schema_documents_authorize_with_the_models_decisions_and_signals() -> None:
    schema = create_app(load_config(overrides=["api.token=t"], environ={})).openapi()
    route = schema["paths"]["/authorize"]["post"]
    assert route["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/TransactionIn")
    assert route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AuthorizationOut")
    schemas = schema["components"]["schemas"]
    assert schemas["Decision"]["enum"] == [decision.value for decision in Decision]
    assert schemas["Signal"]["enum"] == [signal.value for signal in Signal]
    assert set(schemas["TransactionIn"]["required"]) == {"account_no", "tranid", "amount"}


def micros(at: datetime) -> int:
    return int((at - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


_MINUTES = st.integers(min_value=-45 * 24 * 60, max_value=3 * 60)  # the history read has no upper bound


@settings(max_examples=150, deadline=None)
@given(
    history=st.lists(
        st.tuples(_MINUTES, st.sampled_from([5.0, 20.0, 20.0, 80.0, -10.0]), st.sampled_from(["M1", "M2", None])),
        max_size=25,
    ),
    changes=st.lists(_MINUTES, max_size=3),
    merchant=st.sampled_from(["M1", "M2", "M3", None]),
    amount=st.sampled_from([1.0, 20.0, 500.0]),
    restored=st.booleans(),
    frauds=st.lists(
        st.tuples(_MINUTES, st.integers(min_value=0, max_value=20), st.sampled_from(["M1", "M2", None])), max_size=4
    ),
)
def test_the_single_transaction_path_gives_the_streams_context_vector_and_features(
    history: list[tuple[int, float, str | None]],
    changes: list[int],
    merchant: str | None,
    amount: float,
    restored: bool,
    frauds: list[tuple[int, int, str | None]],
) -> None:
    """``vectorised`` builds the history's arrays without pandas; the stream's frames must give the same
    context, vector and risk features for any history: ties in time, missing merchants, refunds, changes,
    and a stored copy of the transaction itself (a replay), which the transaction's own values replace."""
    stored_txns = [
        Txn("A1", NOW + timedelta(minutes=minutes), f"T{number:02d}", value, at_merchant, "5411")
        for number, (minutes, value, at_merchant) in enumerate(history)
    ]
    transaction = {**record(amount=amount), "merchant_id": merchant}
    if restored:  # the job stored this very transaction already, with another amount
        stored_txns.append(Txn("A1", NOW, "T-NEW", 999.0, "M9", "5411"))
    change_times = [(NOW + timedelta(minutes=minutes), "email") for minutes in changes]
    mine = vectorised(transaction, state(history=tuple(stored_txns), changes=tuple(change_times)))
    frame = transactions_frame([transaction])
    events = events_frame(
        transactions_frame([{**vars(t), "channel": None} for t in stored_txns]) if stored_txns else frame.iloc[:0],
        [("A1", at) for at, _ in change_times],
    )
    context = transaction_context(frame, events)
    np.testing.assert_array_equal(mine.context, context.to_numpy(dtype=float))
    np.testing.assert_array_equal(mine.vector, transaction_vectors(frame, context)[0])
    similarity = np.array([0.5])
    # Confirmed frauds on the account or elsewhere, at its merchants, known days after they happened.
    happened = [micros(NOW + timedelta(minutes=minutes)) for minutes, _, _ in frauds]
    confirmed = ConfirmedFrauds(
        np.array(["A1" if number % 2 else "A2" for number in range(len(frauds))], dtype=object),
        np.array([at_merchant for _, _, at_merchant in frauds], dtype=object),
        np.array(happened, dtype=np.int64),
        np.array(
            [at + days * 86_400_000_000 for at, (_, days, _) in zip(happened, frauds, strict=True)], dtype=np.int64
        ),
    )
    today = micros(NOW) // 86_400_000_000
    days = np.arange(today - 40, today + 1)
    totals = MerchantTotals(
        np.array(["M1"] * len(days) + ["M2"] * len(days), dtype=object),
        np.concatenate([days, days]),
        np.concatenate([np.full(len(days), 10), np.full(len(days), 3)]),
    )
    np.testing.assert_array_equal(
        risk_features_of(mine.inputs, mine.context, similarity, confirmed, totals, 7),
        risk_features(frame, context, similarity, confirmed, totals, 7),
    )
