"""An owner correction on the real stack: a change recorded again for another customer moves its
alerts (and its by-customer row) from the earlier customer to the new one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cassandra.cluster import Session

from fraudshop.config import Config
from fraudshop.io.cassandra.changes import record_profile_change
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.lab.waiting import wait_until
from fraudshop.model.changes import ProfileChange
from tests.integration.test_end_to_end import NOW, stored_alerts, transaction

pytestmark = pytest.mark.integration


def test_a_change_recorded_again_for_another_customer_moves_its_alert(
    isolated_config: Config,
    cassandra: Session,
    running_job: Path,
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    first = ProfileChange("ACC-O", "CUST-A", "email", NOW - timedelta(hours=1))
    corrected = ProfileChange("ACC-O", "CUST-B", "email", first.last_updated)
    record_profile_change(cassandra, keyspace, first)
    send_transactions(isolated_config.kafka, [transaction("ACC-O", NOW - timedelta(minutes=5), "O-1", 5.0)], rate=0)
    under_a = {("CUST-A", "O-1", "email", first.last_updated)}
    wait_until(lambda: stored_alerts(cassandra, keyspace, "cust_fraud") == under_a, 240, "the alert under CUST-A")

    record_profile_change(cassandra, keyspace, corrected)
    under_b = {("CUST-B", "O-1", "email", first.last_updated)}
    wait_until(
        lambda: all(
            stored_alerts(cassandra, keyspace, table) == under_b for table in ("cust_fraud", "cust_fraud_by_day")
        ),
        60,
        "the alert moved to CUST-B",
    )
    by_customer = cassandra.execute(f"SELECT customer_id, account_no FROM {keyspace}.cust_change_by_customer")
    assert [(row.customer_id, row.account_no) for row in by_customer] == [("CUST-B", "ACC-O")]
    [latest] = [
        row
        for row in cassandra.execute(f"SELECT customer_id, previous_customer_id FROM {keyspace}.cust_change_log")
        if row.customer_id == "CUST-B"
    ]
    assert latest.previous_customer_id == "CUST-A"
