"""The fraud-prevention rules end to end on the real stack: rules created through the API while the
spark-submitted job runs apply from its next micro-batch; each kind's hit lands in rule_hit and
rule_hit_by_merchant_day, and is announced once on the notifications topic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Session
from fastapi.testclient import TestClient

from fraudshop.config import Config
from fraudshop.io.kafka.notification_reader import notification_messages
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.lab.waiting import wait_until
from tests.integration.conftest import API_AUTH

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def transaction(account: str, at: datetime, tranid: str, amount: float, merchant: str, mcc: str) -> dict[str, Any]:
    return {
        "account_no": account,
        "tranpostdt": at.isoformat(timespec="milliseconds"),
        "tranid": tranid,
        "amount": amount,
        "merchant_id": merchant,
        "merchant_category": mcc,
        "channel": "online" if merchant == "M-APPSTORE" else "pos",
    }


def app_store(account: str, at: datetime, tranid: str, amount: float) -> dict[str, Any]:
    return transaction(account, at, tranid, amount, "M-APPSTORE", "5818")


def coffee(account: str, at: datetime, tranid: str, amount: float) -> dict[str, Any]:
    return transaction(account, at, tranid, amount, "M-COFFEE", "5814")


PROFILE = {
    "email": "rita@example.com",
    "phone": "+44 20 7946 0404",
    "address": {"lines": ["4 Mill Lane"], "city": "Leeds", "postcode": "LS1 4AB", "country": "GB"},
    "accounts": ["ACC-R1"],
    "changed_at": (NOW - timedelta(days=60)).isoformat(),
}
# Before the rules exist: 15.00 of app-store spend this month; judged by no rule.
BEFORE_RULES = [app_store("ACC-R1", NOW, "R-spent-before", 15.0)]
RULES: list[dict[str, Any]] = [
    {"kind": "merchant_monthly_cap", "customer_id": "CUST-R", "amount_limit": 20, "capped_merchant_id": "M-APPSTORE"},
    {"kind": "new_merchant", "customer_id": "CUST-R", "account_no": "ACC-R1", "lookback_days": 30},
    {"kind": "amount_over", "customer_id": "CUST-R", "amount_limit": 500},
    {"kind": "notify_every_transaction", "customer_id": "CUST-N", "account_no": "ACC-N"},
    {"kind": "merchant_amount_over", "merchant_id": "M-COFFEE", "amount_limit": 50},
    {"kind": "merchant_daily_count", "merchant_id": "M-COFFEE", "amount_above": 20, "count_limit": 1},
]


def after_rules(created: datetime) -> list[dict[str, Any]]:
    """Made once the rules exist (a rule watches the transactions made from its creation on), a
    millisecond apart: the same UTC day, and the month of BEFORE_RULES unless the test straddles its end."""

    def at(n: int) -> datetime:
        return created + timedelta(milliseconds=n)

    return [
        app_store("ACC-R1", at(1), "R-app-6", 6.0),  # 21.00 this month: over the cap of 20
        coffee("ACC-R1", at(2), "R-coffee-60", 60.0),  # staff confirm; a new merchant for ACC-R1; 1st over 20
        coffee("ACC-X", at(3), "X-coffee-30", 30.0),  # the 2nd over 20 today: passes 1
        coffee("ACC-X", at(4), "X-coffee-25", 25.0),  # the 3rd: the day's count has fired already
        app_store("ACC-N", at(5), "N-app-2", 2.0),  # notified
        transaction("ACC-R1", at(6), "R-grocer-600", 600.0, "M-GROCER", "5411"),  # over 500; a new merchant
    ]


EXPECTED_HITS = {
    # (tranid, kind, action, customer)
    ("R-app-6", "merchant_monthly_cap", "confirm_customer", "CUST-R"),
    ("R-coffee-60", "new_merchant", "confirm_customer", "CUST-R"),
    ("R-coffee-60", "merchant_amount_over", "confirm_staff", "CUST-R"),
    ("X-coffee-30", "merchant_daily_count", "notify_merchant", None),
    ("N-app-2", "notify_every_transaction", "notify_customer", "CUST-N"),
    ("R-grocer-600", "amount_over", "confirm_customer", "CUST-R"),
    ("R-grocer-600", "new_merchant", "confirm_customer", "CUST-R"),
}


def stored_hits(cassandra: Session, keyspace: str) -> set[tuple[str, str, str, str | None]]:
    rows = cassandra.execute(f"SELECT tranid, kind, action, customer_id FROM {keyspace}.rule_hit_by_merchant_day")
    return {(row.tranid, row.kind, row.action, row.customer_id) for row in rows}


def test_rules_added_while_the_job_runs_hit_store_and_notify(
    isolated_config: Config, cassandra: Session, running_job: Path, api: TestClient
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    assert api.put("/customers/CUST-R/profile", json=PROFILE, headers=API_AUTH).status_code == 201
    send_transactions(isolated_config.kafka, BEFORE_RULES, rate=0, record_format="json")

    def stored(tranids: set[str]) -> bool:
        rows = cassandra.execute(f"SELECT tranid FROM {keyspace}.transaction")
        return tranids <= {row.tranid for row in rows}

    wait_until(lambda: stored({"R-spent-before"}), 240, "the first transaction")
    # The job is running: these rules must apply from a later micro-batch, without a restart.
    created = [api.post("/rules", json=rule, headers=API_AUTH) for rule in RULES]
    assert [response.status_code for response in created] == [201] * len(RULES), [r.text for r in created]
    created_at = max(datetime.fromisoformat(response.json()["created_at"]) for response in created)
    after = after_rules(created_at)
    send_transactions(isolated_config.kafka, after, rate=0, record_format="json")

    wait_until(lambda: stored_hits(cassandra, keyspace) == EXPECTED_HITS, 90, "the rules' hits")
    by_customer = cassandra.execute(f"SELECT tranid, kind FROM {keyspace}.rule_hit WHERE customer_id = 'CUST-R'")
    assert {(row.tranid, row.kind) for row in by_customer} == {
        (tranid, kind) for tranid, kind, _, customer in EXPECTED_HITS if customer == "CUST-R"
    }
    # The evidence and the rule as it was.
    cap = cassandra.execute(
        f"SELECT amount, evidence_value, evidence_limit, rule_parameters, reason, source_topic, source_offset "
        f"FROM {keyspace}.rule_hit WHERE customer_id = 'CUST-R' AND tranpostdt = %s AND tranid = 'R-app-6'",
        (datetime.fromisoformat(after[0]["tranpostdt"]),),
    ).one()
    assert (cap.amount, cap.evidence_value, cap.evidence_limit) == (6.0, 21.0, 20.0)
    assert cap.rule_parameters == '{"amount_limit":20.0,"capped_merchant_id":"M-APPSTORE"}'
    assert cap.reason == "month-to-date spend 21.00 (with this 6.00) is over the monthly cap of 20.00"
    assert cap.source_topic == isolated_config.kafka.topic and cap.source_offset is not None

    # Through the API, as a fraud team reads them.
    hits = api.get(f"/merchants/M-COFFEE/rule-hits?day={created_at.date()}", headers=API_AUTH)
    assert hits.status_code == 200, hits.text
    assert {(row["tranid"], row["kind"]) for row in hits.json()["items"]} == {
        (tranid, kind) for tranid, kind, _, _ in EXPECTED_HITS if tranid.split("-")[1] == "coffee"
    }

    # One message per hit, its id the hit's.
    hit_ids = {row.hit_id for row in cassandra.execute(f"SELECT hit_id FROM {keyspace}.rule_hit_by_merchant_day")}
    messages = list(notification_messages(isolated_config.kafka, follow=False, from_beginning=True))
    assert {message["id"] for message in messages} == hit_ids
    assert len(messages) == len(hit_ids)
