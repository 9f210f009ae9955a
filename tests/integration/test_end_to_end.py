"""Kafka → the spark-submit job → Cassandra, on the real local stack, nothing mocked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Session
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from fraudshop.config import Config
from fraudshop.io.cassandra.changes import record_profile_change
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.io.kafka.settings import kafka_client_settings
from fraudshop.lab.waiting import wait_until
from fraudshop.model.changes import ProfileChange
from tests.integration.conftest import API_AUTH

pytestmark = pytest.mark.integration

# Milliseconds only: Cassandra's timestamp precision, so what we send is what we read back.
NOW = datetime.now(UTC).replace(microsecond=0)
EMAIL_CHANGE = ProfileChange("ACC-A", "CUST-A", "email", NOW - timedelta(hours=1))
EXPIRED_CHANGE = ProfileChange("ACC-B", "CUST-B", "phone", NOW - timedelta(hours=30))
# Recorded while the job runs, after the first micro-batches, by the bank's customer system sending
# CUST-C's edited profile through the API: Carol moved house (and her phone was retyped: no change).
LIVE_CHANGE = ProfileChange("ACC-C", "CUST-C", "address", NOW - timedelta(minutes=2))
CAROL_BEFORE: dict[str, Any] = {
    "email": "carol@example.com",
    "phone": "+44 20 7946 0303",
    "address": {"lines": ["9 Cedar Avenue"], "city": "London", "postcode": "SE10 8XJ", "country": "GB"},
    "accounts": ["ACC-C"],
    "changed_at": (NOW - timedelta(days=30)).isoformat(),
}
CAROL_MOVED: dict[str, Any] = {
    **CAROL_BEFORE,
    "phone": "020 7946 0303",
    "address": {"lines": ["31 Canal Street"], "city": "Manchester", "postcode": "M1 3HE", "country": "GB"},
    "changed_at": LIVE_CHANGE.last_updated.isoformat(),
}


def transaction(account: str, at: datetime, tranid: str, amount: float) -> dict[str, object]:
    return {
        "account_no": account,
        "tranpostdt": at.isoformat(timespec="milliseconds"),
        "tranid": tranid,
        "amount": amount,
        "merchant": "TEST SHOP",
        "cardnum": "4000123412341234",
        "merchant_id": "M-TEST",
        "merchant_category": "5411",
        "channel": "POS",  # stored as pos
    }


FIRST_JSON = [
    transaction("ACC-A", EMAIL_CHANGE.last_updated + timedelta(minutes=10), "A-in-window", 10.0),
    transaction("ACC-A", EMAIL_CHANGE.last_updated - timedelta(milliseconds=1), "A-1ms-before", 11.0),
    transaction("ACC-B", NOW - timedelta(minutes=1), "B-expired-window", 12.0),
    transaction("ACC-C", LIVE_CHANGE.last_updated - timedelta(minutes=3), "C-before-change", 13.0),
]
# The original proofshop's semicolon format, naive time = UTC.
FIRST_LEGACY = [transaction("ACC-A", EMAIL_CHANGE.last_updated + timedelta(minutes=20), "A-legacy", 14.0)]
MALFORMED = [
    b"this is not a transaction",
    b'{"account_no": "ACC-A", "tranpostdt": "2026-01-01T00:00:00Z", "tranid": "X"}',
]
SECOND_JSON = [
    transaction("ACC-C", NOW, "C-after-change", 15.0),
    transaction("ACC-C", LIVE_CHANGE.last_updated - timedelta(seconds=1), "C-1s-before-change", 16.0),
]

EXPECTED_TRANSACTIONS = {t["tranid"] for t in FIRST_JSON + FIRST_LEGACY + SECOND_JSON}
EXPECTED_ALERTS = {
    # (customer, tranid, change type, change time)
    ("CUST-A", "A-in-window", "email", EMAIL_CHANGE.last_updated),
    ("CUST-A", "A-legacy", "email", EMAIL_CHANGE.last_updated),
    ("CUST-C", "C-after-change", "address", LIVE_CHANGE.last_updated),
}
EXPECTED_REJECTS = {("unrecognised_format", MALFORMED[0].decode()), ("missing_amount", MALFORMED[1].decode())}


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def stored_tranids(session: Session, keyspace: str) -> set[str]:
    return {row.tranid for row in session.execute(f"SELECT tranid FROM {keyspace}.transaction")}


def stored_alerts(session: Session, keyspace: str, table: str) -> set[tuple[str, str, str, datetime]]:
    rows = session.execute(f"SELECT customer_id, tranid, change_type, last_updated FROM {keyspace}.{table}")
    return {(r.customer_id, r.tranid, r.change_type, utc(r.last_updated)) for r in rows}


def stored_rejects(session: Session, keyspace: str) -> set[tuple[str, str]]:
    return {
        (r.reason, r.raw_value)
        for r in session.execute(f"SELECT reason, raw_value FROM {keyspace}.transaction_rejects")
    }


def test_transactions_flow_through_and_changes_are_picked_up_live(
    isolated_config: Config, cassandra: Session, running_job: Path, api: TestClient
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    for change in (EMAIL_CHANGE, EXPIRED_CHANGE):
        record_profile_change(cassandra, keyspace, change)
    baseline = api.put("/customers/CUST-C/profile", json=CAROL_BEFORE, headers=API_AUTH)
    assert (baseline.status_code, baseline.json()["changes"]) == (201, []), baseline.text

    send_transactions(isolated_config.kafka, FIRST_JSON, rate=0, record_format="json")
    send_transactions(isolated_config.kafka, FIRST_LEGACY, rate=0, record_format="legacy")
    raw = KafkaProducer(**kafka_client_settings(isolated_config.kafka), acks="all")
    for value in MALFORMED:
        raw.send(isolated_config.kafka.topic, value=value)
    raw.close()

    first_tranids = {t["tranid"] for t in FIRST_JSON + FIRST_LEGACY}
    wait_until(lambda: stored_tranids(cassandra, keyspace) == first_tranids, 240, "the first transactions")
    wait_until(lambda: stored_rejects(cassandra, keyspace) == EXPECTED_REJECTS, 30, "the rejected records")

    # The job is running: this change must be used by a later micro-batch, without a restart.
    moved = api.put("/customers/CUST-C/profile", json=CAROL_MOVED, headers=API_AUTH)
    assert moved.status_code == 200, moved.text
    recorded = [(c["account_no"], c["change_type"], c["last_updated"]) for c in moved.json()["changes"]]
    assert [(account, kind, datetime.fromisoformat(at)) for account, kind, at in recorded] == [
        (LIVE_CHANGE.account_no, LIVE_CHANGE.change_type, LIVE_CHANGE.last_updated)
    ]
    send_transactions(isolated_config.kafka, SECOND_JSON, rate=0, record_format="json")

    wait_until(lambda: stored_tranids(cassandra, keyspace) == EXPECTED_TRANSACTIONS, 60, "all transactions")
    alert_tables = ("cust_fraud", "cust_fraud_by_day")
    wait_until(
        lambda: all(stored_alerts(cassandra, keyspace, table) == EXPECTED_ALERTS for table in alert_tables),
        30,
        "the alerts in both alert tables",
    )
    assert stored_rejects(cassandra, keyspace) == EXPECTED_REJECTS

    # Lineage and amounts survive the trip.
    row = cassandra.execute(
        f"SELECT amount, account_no, source_topic, source_offset, qualifying_changes, detected_at "
        f"FROM {keyspace}.cust_fraud WHERE customer_id = 'CUST-C'"
    ).one()
    assert (row.amount, row.account_no, row.source_topic, row.qualifying_changes) == (
        15.0,
        "ACC-C",
        isolated_config.kafka.topic,
        1,
    )
    assert row.source_offset is not None and row.detected_at is not None
    stored = cassandra.execute(
        f"SELECT tranpostdt, amount, merchant, cardnum, merchant_id, merchant_category, channel "
        f"FROM {keyspace}.transaction WHERE account_no = 'ACC-A' AND tranpostdt = %s",
        (EMAIL_CHANGE.last_updated + timedelta(minutes=10),),
    ).one()
    assert (stored.amount, stored.merchant, stored.cardnum) == (10.0, "TEST SHOP", "4000123412341234")
    assert (stored.merchant_id, stored.merchant_category, stored.channel) == ("M-TEST", "5411", "pos")
    # The semicolon record (17 fields: with the merchant) too.
    stored = cassandra.execute(
        f"SELECT merchant_id, merchant_category, channel FROM {keyspace}.transaction "
        "WHERE account_no = 'ACC-A' AND tranpostdt = %s",
        (EMAIL_CHANGE.last_updated + timedelta(minutes=20),),
    ).one()
    assert (stored.merchant_id, stored.merchant_category, stored.channel) == ("M-TEST", "5411", "pos")


def test_a_change_recorded_after_its_transactions_flags_them_once(
    isolated_config: Config, cassandra: Session, running_job: Path
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    change = ProfileChange("ACC-L", "CUST-L", "phone", NOW - timedelta(hours=1))
    covered = transaction("ACC-L", NOW - timedelta(minutes=10), "L-covered", 21.0)
    before = transaction("ACC-L", NOW - timedelta(hours=2), "L-before-change", 22.0)
    # The same record twice in one micro-batch, and once more in a later one: a replay.
    send_transactions(isolated_config.kafka, [covered, covered, before], rate=0)
    wait_until(lambda: stored_tranids(cassandra, keyspace) == {"L-covered", "L-before-change"}, 240, "transactions")

    # The card was used before the change was recorded: the job must flag it on a later batch.
    record_profile_change(cassandra, keyspace, change)
    expected = {("CUST-L", "L-covered", "phone", change.last_updated)}
    wait_until(lambda: stored_alerts(cassandra, keyspace, "cust_fraud") == expected, 60, "the late alert")
    send_transactions(isolated_config.kafka, [covered], rate=0)  # offset 3, all on ACC-L's partition

    def replay_processed() -> bool:
        rows = cassandra.execute(f"SELECT source_offset FROM {keyspace}.cust_fraud WHERE customer_id = 'CUST-L'")
        return [row.source_offset for row in rows] == [3]

    wait_until(replay_processed, 30, "the replayed record")
    assert stored_alerts(cassandra, keyspace, "cust_fraud_by_day") == expected

    rows = list(cassandra.execute(f"SELECT tranid, qualifying_changes FROM {keyspace}.cust_fraud"))
    assert [(r.tranid, r.qualifying_changes) for r in rows] == [("L-covered", 1)]
    assert len(list(cassandra.execute(f"SELECT tranid FROM {keyspace}.transaction"))) == 2
