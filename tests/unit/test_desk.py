"""The desk's pure parts: alerts from every signal, one per transaction; the queue; the overview's figures;
the case a review teaches; the users' config."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from fraudshop.config import ConfigError, load_config, parse_desk_users
from fraudshop.model.cases import SIMILARITY_KIND, CaseLabel, CaseSource, transaction_case_id
from fraudshop.model.desk import (
    PROFILE_CHANGE_SIGNAL,
    SIGNALS,
    UNNAMED_PATTERN,
    AlertStatus,
    QueueFilter,
    Review,
    ReviewAction,
    ReviewedTransaction,
    TransactionKey,
    alerts_of,
    alerts_per_hour,
    case_of_review,
    open_alerts,
    page_of,
    precision_by_signal,
    queue_age,
    statuses_of,
)
from fraudshop.model.rules import RuleKind

T0 = datetime(2026, 11, 30, 9, 15, 0, 123456, tzinfo=UTC)


def flagged(account: str, at: datetime, tranid: str, customer: str = "C1", **extra: object) -> dict[str, object]:
    return {
        "customer_id": customer,
        "account_no": account,
        "tranpostdt": at,
        "tranid": tranid,
        "amount": 10.0,
        "change_type": "email",
        "last_updated": at - timedelta(hours=1),
        "qualifying_changes": 1,
        "detected_at": at + timedelta(seconds=5),
        **extra,
    }


def hit(account: str, at: datetime, tranid: str, kind: str, merchant: str | None = "M1") -> dict[str, object]:
    return {
        "customer_id": "C1",
        "account_no": account,
        "tranpostdt": at,
        "tranid": tranid,
        "kind": kind,
        "reason": f"{kind} reason",
        "merchant_id": merchant,
        "amount": 10.0,
        "detected_at": at + timedelta(seconds=9),
    }


def review(key: TransactionKey, action: ReviewAction, minutes: int, signals: tuple[str, ...]) -> Review:
    return Review(key, T0 + timedelta(minutes=minutes), uuid.uuid4(), action, "alice", None, "C1", signals)


def test_one_alert_per_transaction_carries_every_signal_newest_first() -> None:
    later = T0 + timedelta(minutes=3)
    alerts = alerts_of(
        [flagged("A1", T0, "t1"), flagged("A2", later, "t2")],
        [hit("A1", T0, "t1", SIMILARITY_KIND), hit("A1", T0, "t1", RuleKind.AMOUNT_OVER.value)],
    )
    assert [a.key.tranid for a in alerts] == ["t2", "t1"]
    first = alerts[1]
    # In the desk's order of signals, whatever the order found.
    assert first.signals == (PROFILE_CHANGE_SIGNAL, RuleKind.AMOUNT_OVER.value, SIMILARITY_KIND)
    assert first.merchant_id == "M1"
    assert first.detected_at == T0 + timedelta(seconds=5)
    assert "email changed on the profile" in first.flags[0].reason
    # Keys hold Cassandra's millisecond precision, so a row read back matches its alert.
    assert first.key == TransactionKey.of("A1", T0.replace(microsecond=123000), "t1")
    assert first.key.day == date(2026, 11, 30)


def test_the_queue_drops_confirmed_and_dismissed_alerts_and_keeps_noted_ones() -> None:
    alerts = alerts_of([flagged("A1", T0 + timedelta(minutes=m), f"t{m}") for m in range(4)], [])
    keys = {a.key.tranid: a.key for a in alerts}
    reviews = [
        review(keys["t0"], ReviewAction.CONFIRM, 1, (PROFILE_CHANGE_SIGNAL,)),
        review(keys["t1"], ReviewAction.DISMISS, 1, (PROFILE_CHANGE_SIGNAL,)),
        review(keys["t2"], ReviewAction.NOTE, 1, (PROFILE_CHANGE_SIGNAL,)),
    ]
    statuses = statuses_of(reviews)
    assert statuses == {keys["t0"]: AlertStatus.CONFIRMED, keys["t1"]: AlertStatus.DISMISSED}
    assert [a.key.tranid for a in open_alerts(alerts, statuses)] == ["t3", "t2"]


def test_a_later_decision_overrides_an_earlier_one() -> None:
    key = TransactionKey.of("A1", T0, "t1")
    first, second = ReviewAction.CONFIRM, ReviewAction.DISMISS
    reviews = [review(key, second, 5, ("x",)), review(key, first, 1, ("x",))]
    assert statuses_of(reviews) == {key: AlertStatus.DISMISSED}


def test_filters_by_day_signal_customer_and_merchant() -> None:
    yesterday = T0 - timedelta(days=1)
    alerts = alerts_of(
        [flagged("A1", T0, "t1", customer="C1"), flagged("A2", yesterday, "t2", customer="C2")],
        [hit("A2", yesterday, "t2", SIMILARITY_KIND, merchant="M9")],
    )

    def shown(only: QueueFilter) -> list[str]:
        return [a.key.tranid for a in open_alerts(alerts, {}, only)]

    assert shown(QueueFilter()) == ["t1", "t2"]
    assert shown(QueueFilter(day=yesterday.date())) == ["t2"]
    assert shown(QueueFilter(signal=SIMILARITY_KIND)) == ["t2"]
    assert shown(QueueFilter(signal=PROFILE_CHANGE_SIGNAL)) == ["t1", "t2"]
    assert shown(QueueFilter(customer_id="C1")) == ["t1"]
    assert shown(QueueFilter(merchant_id="M9")) == ["t2"]
    assert shown(QueueFilter(merchant_id="M9", customer_id="C1")) == []


def test_pages_are_clamped_to_what_exists() -> None:
    alerts = alerts_of([flagged("A1", T0 + timedelta(minutes=m), f"t{m}") for m in range(7)], [])
    assert [len(page_of(alerts, n, 3).alerts) for n in (1, 2, 3)] == [3, 3, 1]
    assert page_of(alerts, 9, 3).number == 3
    assert page_of([], 1, 3).pages == 1


def test_precision_counts_each_alerts_latest_decision_per_signal() -> None:
    a, b, c = (TransactionKey.of("A1", T0 + timedelta(minutes=m), f"t{m}") for m in range(3))
    both = (PROFILE_CHANGE_SIGNAL, SIMILARITY_KIND)
    reviews = [
        review(a, ReviewAction.CONFIRM, 1, both),
        review(b, ReviewAction.CONFIRM, 1, (PROFILE_CHANGE_SIGNAL,)),
        review(b, ReviewAction.DISMISS, 2, (PROFILE_CHANGE_SIGNAL,)),  # changed their mind: counts as dismissed
        review(c, ReviewAction.NOTE, 1, (SIMILARITY_KIND,)),  # a note decides nothing
    ]
    by_signal = {row.signal: row for row in precision_by_signal(reviews)}
    assert list(by_signal) == list(SIGNALS)
    assert (by_signal[PROFILE_CHANGE_SIGNAL].confirmed, by_signal[PROFILE_CHANGE_SIGNAL].reviewed) == (1, 2)
    assert by_signal[PROFILE_CHANGE_SIGNAL].precision == 0.5
    assert by_signal[SIMILARITY_KIND].precision == 1.0
    assert by_signal[RuleKind.NEW_MERCHANT.value].precision is None


def test_alerts_per_hour_count_each_signal_in_its_utc_hour() -> None:
    alerts = alerts_of(
        [flagged("A1", T0, "t1"), flagged("A1", T0 + timedelta(minutes=50), "t2")],
        [hit("A1", T0, "t1", SIMILARITY_KIND)],
    )
    counts = alerts_per_hour(alerts, T0.date())
    assert list(counts) == [PROFILE_CHANGE_SIGNAL, SIMILARITY_KIND]
    assert counts[PROFILE_CHANGE_SIGNAL][9] == 1 and counts[PROFILE_CHANGE_SIGNAL][10] == 1
    assert sum(counts[SIMILARITY_KIND]) == 1
    assert alerts_per_hour(alerts, T0.date() - timedelta(days=1)) == {}


def test_the_queue_age_is_the_oldest_and_median_wait() -> None:
    alerts = alerts_of([flagged("A1", T0 + timedelta(minutes=m), f"t{m}") for m in (0, 10, 20)], [])
    age = queue_age(alerts, T0 + timedelta(minutes=30, seconds=5))
    assert age.open == 3
    assert age.oldest == timedelta(minutes=30)
    assert age.median == timedelta(minutes=20)
    assert queue_age([], T0).oldest is None


def test_a_confirm_teaches_a_fraud_case_and_a_dismiss_a_genuine_one() -> None:
    key = TransactionKey.of("A1", T0, "t1")
    stored = ReviewedTransaction(key, (0.5,) * 30, "M1", 12.5)
    confirmed = case_of_review(review(key, ReviewAction.CONFIRM, 1, ("x",)), stored, "card_testing")
    assert confirmed is not None
    assert confirmed.case_id == transaction_case_id("A1", key.tranpostdt, "t1")
    assert (confirmed.label, confirmed.source, confirmed.pattern) == (
        CaseLabel.FRAUD,
        CaseSource.ANALYST,
        "card_testing",
    )
    assert (confirmed.recorded_by, confirmed.merchant_id, confirmed.amount) == ("alice", "M1", 12.5)
    assert case_of_review(review(key, ReviewAction.CONFIRM, 1, ()), stored).pattern == UNNAMED_PATTERN  # type: ignore[union-attr]
    dismissed = case_of_review(review(key, ReviewAction.DISMISS, 2, ("x",)), stored)
    assert dismissed is not None and dismissed.label is CaseLabel.GENUINE and dismissed.case_id == confirmed.case_id
    assert case_of_review(review(key, ReviewAction.NOTE, 3, ("x",)), stored) is None
    assert (
        case_of_review(review(key, ReviewAction.CONFIRM, 3, ("x",)), ReviewedTransaction(key, None, None, None)) is None
    )


def test_desk_users_parse_and_a_bad_entry_is_refused_without_its_token() -> None:
    users = parse_desk_users("alice:analyst:0123456789abcdef, vic:viewer:fedcba9876543210")
    assert {name: user.role for name, user in users.items()} == {"alice": "analyst", "vic": "viewer"}
    assert "0123456789abcdef" not in repr(users)
    for bad, why in [
        ("alice:boss:0123456789abcdef", "role"),
        ("alice:analyst:short", "16 characters"),
        ("al ice:analyst:0123456789abcdef", "name"),
        ("alice:analyst:0123456789abcdef,alice:viewer:0123456789abcdef", "twice"),
    ]:
        with pytest.raises(ConfigError) as refused:
            load_config(overrides=[f"desk.users={bad}"], environ={})
        assert why in str(refused.value) and "desk: users" in str(refused.value)
        assert "0123456789abcdef" not in str(refused.value)
