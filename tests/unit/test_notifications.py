"""The notifications' messages (one JSON object per hit, its id the hit's) and a consumer's dropping of
the repeats at-least-once delivery brings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from pyspark.sql import SparkSession

from fraudshop.io.kafka.notification_reader import SeenIds
from fraudshop.io.kafka.notifications import NOTIFICATION_FIELDS, notification_messages
from fraudshop.model.tables import RULE_HIT_COLUMNS

HIT = {
    "customer_id": None,
    "merchant_id": "COFFEE",
    "day": date(2026, 2, 3),
    "tranpostdt": datetime(2026, 2, 3, 9, 15, 2, 123000, tzinfo=UTC),
    "tranid": "T1",
    "rule_id": "00000000-0000-0000-0000-000000000002",
    "account_no": "ACC-9",
    "merchant_category": "5814",
    "kind": "merchant_amount_over",
    "action": "confirm_staff",
    "amount": 61.0,
    "evidence_value": 61.0,
    "evidence_limit": 50.0,
    "reason": "amount 61.00 is over the merchant's staff-confirmation limit of 50.00",
    "rule_parameters": '{"amount_limit":50.0}',
    "hit_id": "0123456789abcdef0123456789abcdef",
    "detected_at": datetime(2026, 2, 3, 9, 15, 4, tzinfo=UTC),
    "source_topic": "transaction",
    "source_partition": 1,
    "source_offset": 42,
}
SCHEMA = (
    "customer_id string, merchant_id string, day date, tranpostdt timestamp, tranid string, rule_id string, "
    "account_no string, merchant_category string, kind string, action string, amount double, "
    "evidence_value double, evidence_limit double, reason string, rule_parameters string, hit_id string, "
    "detected_at timestamp, source_topic string, source_partition int, source_offset bigint"
)


def test_a_message_is_the_hit_as_json_keyed_by_its_customer_or_merchant(spark: SparkSession) -> None:
    hits = spark.createDataFrame([tuple(HIT[name] for name in RULE_HIT_COLUMNS)], SCHEMA)
    (row,) = notification_messages(hits).collect()
    message = json.loads(row.value)
    assert row.key == "COFFEE"  # no known holder: the merchant's
    assert list(message) == [name for name in NOTIFICATION_FIELDS if message.get(name) is not None]
    assert message["id"] == HIT["hit_id"]
    assert message["tranpostdt"] == "2026-02-03T09:15:02.123Z"
    assert message["day"] == "2026-02-03"
    assert message["reason"] == HIT["reason"]


def test_a_consumer_drops_the_repeats_of_an_id() -> None:
    messages = [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "a", "n": 3}, {"id": "c", "n": 4}, {"id": "b", "n": 5}]
    seen = SeenIds()
    assert [m["n"] for m in messages if seen.first_time(str(m["id"]))] == [1, 2, 4]


def test_a_consumer_remembers_the_last_ids_only() -> None:
    messages = [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "a"}]
    seen = SeenIds(remembered=2)
    assert [m["id"] for m in messages if seen.first_time(m["id"])] == ["a", "b", "c", "a"]
