"""The similarity signal end to end on the real stack: with seeded cases in Cassandra, the spark-submitted
job scores every transaction (its vector, score and nearest cases in its transaction row), and a
card-testing burst becomes similar_to_fraud hits in rule_hit and rule_hit_by_merchant_day, each announced
once on the notifications topic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cassandra.cluster import Session

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config
from fraudshop.io.kafka.notification_reader import notification_messages
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.lab.patterns import FraudPattern, pattern_instances
from fraudshop.lab.waiting import wait_until
from fraudshop.model.cases import SIMILARITY_KIND
from fraudshop.model.features import VECTOR_DIMENSIONS
from tests.integration.conftest import TEST_STACK_SETTINGS

pytestmark = pytest.mark.integration


def test_a_card_testing_burst_is_scored_stored_and_announced(
    isolated_config: Config, cassandra: Session, running_job: Path
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    settings = [item for setting in TEST_STACK_SETTINGS for item in ("--set", setting)]
    assert (
        fraudshop_main(["cases", "seed", "--per-pattern", "25", *settings, "--set", f"cassandra.keyspace={keyspace}"])
        == 0
    )
    (testing,) = pattern_instances(FraudPattern.CARD_TESTING, 1, 7, datetime.now(UTC) - timedelta(minutes=5))
    cassandra.execute(
        f"INSERT INTO {keyspace}.account_holder (account_no, customer_id) VALUES (%s, %s)",
        (testing.account_no, "CUST-TESTED"),
    )
    everything = {transaction["tranid"] for transaction in (*testing.history, *testing.frauds)}

    def scored() -> dict[str, tuple[list[float], float, list[str]]]:
        rows = cassandra.execute(
            f"SELECT tranid, vector, risk_score, nearest_cases FROM {keyspace}.transaction WHERE account_no = %s",
            (testing.account_no,),
        )
        return {
            row.tranid: (row.vector, row.risk_score, row.nearest_cases) for row in rows if row.risk_score is not None
        }

    send_transactions(isolated_config.kafka, testing.history, rate=0, record_format="json")
    wait_until(lambda: {t["tranid"] for t in testing.history} <= scored().keys(), 240, "the ordinary month scored")
    send_transactions(isolated_config.kafka, testing.frauds, rate=0, record_format="json")
    wait_until(lambda: everything <= scored().keys(), 120, "the burst scored")

    scores = scored()
    assert all(len(vector) == VECTOR_DIMENSIONS and len(nearest) == 5 for vector, _, nearest in scores.values())
    fraud_ids = {fraud["tranid"] for fraud in testing.frauds}
    over = {tranid for tranid, (_, score, _) in scores.items() if score >= isolated_config.similarity.threshold}
    assert len(over & fraud_ids) >= len(fraud_ids) // 2
    assert len(over - fraud_ids) <= max(1, len(testing.history) // 10)

    def hits() -> set[str]:
        rows = cassandra.execute(f"SELECT tranid, kind FROM {keyspace}.rule_hit WHERE customer_id = 'CUST-TESTED'")
        return {row.tranid for row in rows if row.kind == SIMILARITY_KIND}

    def hit_ids_by_merchant_day() -> set[str]:
        rows = cassandra.execute(f"SELECT kind, hit_id FROM {keyspace}.rule_hit_by_merchant_day")
        return {row.hit_id for row in rows if row.kind == SIMILARITY_KIND}

    # The two hit tables are written side by side: wait for both.
    wait_until(lambda: hits() == over and len(hit_ids_by_merchant_day()) == len(over), 60, "the similarity hits")
    hit_ids = hit_ids_by_merchant_day()
    messages = [m for m in notification_messages(isolated_config.kafka, follow=False, from_beginning=True)]
    assert {m["id"] for m in messages if m["kind"] == SIMILARITY_KIND} == hit_ids
    assert len(messages) == len(hit_ids)
