"""The story's waits: bounded, and over at once when the job they wait on has stopped; the rules chapter's
foretold hits, purchases and notification lines."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import SparkSession

from fraudshop.config import load_config
from fraudshop.lab.story import (
    BASELINES,
    DEMO_PURCHASES,
    DEMO_RULES,
    NOTIFIED_LINE,
    RULES_CUSTOMER_ID,
    ForetoldHit,
    Purchase,
    Running,
    _wait_until,
    foretell_hits,
    is_demo_rule,
    notification_line,
    purchase_transaction,
    rules_customer_account,
    with_api_token,
)
from fraudshop.lab.workload import APP_STORE_ID, COFFEE_SHOP_ID, account_number, synthetic_transactions
from fraudshop.model.records import Transaction
from fraudshop.transforms.parsing import parse_transaction_records
from tests.unit.kafka_rows import RECEIVED_AT, kafka_records


def test_a_wait_ends_when_its_condition_holds() -> None:
    answers = iter([False, False, True])
    assert _wait_until("the third answer", lambda: next(answers), lambda: None, timeout=10, interval=0.01) < 5


def test_a_wait_is_bounded_and_names_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"timed out after 0 s waiting for alert for CUST-X's change"):
        _wait_until("alert for CUST-X's change", lambda: False, lambda: None, timeout=0.3, interval=0.05)
    assert time.monotonic() - started < 5


def test_a_wait_gives_up_at_once_when_the_job_stopped() -> None:
    running = Running(load_config(environ={}))
    running.job = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    running.job.wait()
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"the streaming job stopped \(exit 3\)"):
        _wait_until("new transaction in Cassandra", lambda: False, running.check_job, timeout=60)
    assert time.monotonic() - started < 5
    running.job = None  # already reaped: nothing for stop() to do


def test_the_api_token_is_kept_or_made() -> None:
    configured = load_config(overrides=["api.token=mine"], environ={})
    assert with_api_token(configured).api.token == "mine"
    made = with_api_token(load_config(overrides=["api.token="], environ={}))
    assert len(made.api.token) >= 16


# The rules chapter: what it foretells, sends and prints.


def dave_buys(*purchases: tuple[float, str, datetime]) -> list[Transaction]:
    return [
        purchase_transaction(Purchase(merchant_id, amount, "buys"), posted) for amount, merchant_id, posted in purchases
    ]


NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


#: The story's rules as the API returns them.
STORED_CAP: dict[str, Any] = {
    "rule_id": "0b6f3c52-5d0e-4f0c-9a3e-2f1c7d2b8e41",
    "kind": "merchant_monthly_cap",
    "scope": "customer",
    "scope_id": RULES_CUSTOMER_ID,
    "customer_id": RULES_CUSTOMER_ID,
    "account_no": None,
    "merchant_id": None,
    "parameters": {"amount_limit": 20.0, "capped_merchant_id": APP_STORE_ID},
    "action": "confirm_customer",
    "created_at": "2026-11-29T10:12:03.512000Z",
    "deleted_at": None,
}
STORED_STAFF: dict[str, Any] = {
    **STORED_CAP,
    "kind": "merchant_amount_over",
    "scope": "merchant",
    "scope_id": COFFEE_SHOP_ID,
    "customer_id": None,
    "merchant_id": COFFEE_SHOP_ID,
    "parameters": {"amount_limit": 50.0},
    "action": "confirm_staff",
}


def test_the_purchase_that_takes_the_month_over_the_cap_asks_dave_and_the_big_coffee_asks_staff() -> None:
    sent = [
        purchase_transaction(purchase, NOW + timedelta(seconds=second))
        for second, purchase in enumerate(DEMO_PURCHASES)
    ]
    assert [(p.merchant_id, p.amount) for p in DEMO_PURCHASES] == [
        (APP_STORE_ID, 12.00),
        (APP_STORE_ID, 9.99),
        (COFFEE_SHOP_ID, 65.00),
    ]
    foretold = [
        ForetoldHit(sent[1]["tranid"], "merchant_monthly_cap", "confirm_customer", 9.99, 21.99, 20.0),
        ForetoldHit(sent[2]["tranid"], "merchant_amount_over", "confirm_staff", 65.0, 65.0, 50.0),
    ]
    assert foretell_hits(sent, DEMO_RULES) == foretold
    assert foretell_hits(sent, [STORED_CAP, STORED_STAFF]) == foretold  # as POST /rules returned them


def test_a_cap_fires_on_every_later_purchase_of_the_month_and_counts_each_utc_month_apart() -> None:
    end_of_month = datetime(2026, 11, 30, 23, 59, 59, 500_000, tzinfo=UTC)
    sent = dave_buys(
        (12.00, APP_STORE_ID, end_of_month),
        (9.99, APP_STORE_ID, end_of_month + timedelta(seconds=1)),  # 1 December: a new month, 9.99
        (10.01, APP_STORE_ID, end_of_month + timedelta(seconds=2)),  # 20.00: not over 20
        (0.99, APP_STORE_ID, end_of_month + timedelta(seconds=3)),  # 20.99: over
        (-5.00, APP_STORE_ID, end_of_month + timedelta(seconds=4)),  # a refund: never spend, never fires
        (0.99, APP_STORE_ID, end_of_month + timedelta(seconds=5)),  # 21.98: over
        (30.00, COFFEE_SHOP_ID, end_of_month + timedelta(seconds=6)),  # another merchant: not capped
    )
    foretold = foretell_hits(sent, DEMO_RULES[:1])
    assert [(hit.tranid, hit.evidence_value) for hit in foretold] == [
        (sent[3]["tranid"], 20.99),
        (sent[5]["tranid"], 21.98),
    ]


def test_a_purchase_equal_to_the_staff_limit_is_not_over_it() -> None:
    sent = dave_buys((50.00, COFFEE_SHOP_ID, NOW), (50.01, COFFEE_SHOP_ID, NOW + timedelta(seconds=1)))
    assert [hit.tranid for hit in foretell_hits(sent, DEMO_RULES[1:])] == [sent[1]["tranid"]]


def test_daves_purchases_are_valid_records_of_his_account_with_the_merchants_fields(spark: SparkSession) -> None:
    sent = dave_buys((9.99, APP_STORE_ID, RECEIVED_AT), (65.00, COFFEE_SHOP_ID, RECEIVED_AT))
    parsed = parse_transaction_records(kafka_records(spark, [json.dumps(t) for t in sent]))
    rows = parsed.orderBy("source_offset").collect()
    assert [row.reject_reason for row in rows] == [None, None]
    assert [(row.account_no, row.amount, row.merchant_id, row.merchant_category, row.channel) for row in rows] == [
        (rules_customer_account(), 9.99, APP_STORE_ID, "5818", "online"),
        (rules_customer_account(), 65.00, COFFEE_SHOP_ID, "5814", "pos"),
    ]


def test_dave_is_a_customer_of_the_story_on_an_account_no_producer_sends() -> None:
    assert dict(BASELINES)[RULES_CUSTOMER_ID]["accounts"] == [rules_customer_account()]
    producer = synthetic_transactions(10_000, seed=1)
    assert rules_customer_account() not in {next(producer)["account_no"] for _ in range(20_000)}
    assert rules_customer_account() not in {account_number(index) for index in range(10_000)}


def test_only_an_earlier_runs_rules_are_removed() -> None:
    stored_cap, stored_staff = STORED_CAP, STORED_STAFF
    assert is_demo_rule(stored_cap) and is_demo_rule(stored_staff)
    # Someone's own rules on the story's customer and merchant stay.
    assert not is_demo_rule({**stored_cap, "parameters": {"amount_limit": 30.0, "capped_merchant_id": APP_STORE_ID}})
    assert not is_demo_rule({**stored_cap, "account_no": rules_customer_account(), "scope": "account"})
    assert not is_demo_rule({**stored_staff, "kind": "amount_over", "customer_id": RULES_CUSTOMER_ID})
    assert not is_demo_rule({**stored_staff, "merchant_id": "M0001"})


def test_a_notification_is_printed_on_one_parseable_line() -> None:
    message = {
        "id": "c2f1",
        "customer_id": RULES_CUSTOMER_ID,
        "merchant_id": APP_STORE_ID,
        "tranid": "tx-2",
        "kind": "merchant_monthly_cap",
        "action": "confirm_customer",
        "amount": 9.99,
        "evidence_value": 21.99,
        "evidence_limit": 20.0,
        "reason": "month-to-date spend 21.99 (with this 9.99) is over the monthly cap of 20.00",
        "tranpostdt": "2026-11-29T10:00:00.950Z",
        "detected_at": "2026-11-29T10:00:01.250Z",
    }
    line = notification_line(message, received_at=datetime(2026, 11, 29, 10, 0, 2, 460_000, tzinfo=UTC))
    assert line == (
        "NOTIFIED 10:00:02.460 +1.5s confirm_customer merchant_monthly_cap CUST-DAVE M-APPSTORE 9.99 tx-2: "
        "month-to-date spend 21.99 (with this 9.99) is over the monthly cap of 20.00"
    )
    assert NOTIFIED_LINE.findall(f"listening\n{line}\n") == [
        (
            "10:00:02.460",
            "1.5",
            "confirm_customer",
            "merchant_monthly_cap",
            "CUST-DAVE",
            "M-APPSTORE",
            "9.99",
            "tx-2",
            message["reason"],
        )
    ]
    # A merchant's hit on an account whose holder is unknown has no customer.
    unknown_holder = {**message, "customer_id": None, "merchant_id": COFFEE_SHOP_ID, "amount": 65}
    assert " - M-COFFEE 65.00 " in notification_line(unknown_holder, datetime.now(UTC))
