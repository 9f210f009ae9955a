"""The quarantine command on the real stack: list by reason, replay to Kafka, nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cassandra.cluster import Session
from kafka import KafkaConsumer

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config
from fraudshop.io.kafka.settings import kafka_client_settings
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.io.quarantine import REJECT_LIST_COLUMNS

pytestmark = pytest.mark.integration

RAW = ['{"account_no": "A", "tranid": "T1", "tranpostdt": "2026-11-23T10:00:00Z", "amount": "12,50"}', "garbage"]


def quarantine(session: Session, keyspace: str) -> None:
    insert = session.prepare(
        f"INSERT INTO {keyspace}.transaction_rejects (reason, source_topic, source_partition, source_offset, detail, "
        "raw_value, rejected_at) VALUES (?, 'transaction', 0, ?, ?, ?, ?)"
    )
    now = datetime.now(UTC)
    session.execute(insert, ("invalid_amount", 7, "amount '12,50' is not a number", RAW[0], now))
    session.execute(
        insert, ("unrecognised_format", 8, "neither a JSON object nor semicolon-separated text", RAW[1], now)
    )


def test_list_then_replay(isolated_config: Config, cassandra: Session, capsys: pytest.CaptureFixture[str]) -> None:
    keyspace = isolated_config.cassandra.keyspace
    quarantine(cassandra, keyspace)
    ensure_topic(isolated_config.kafka)
    settings = [
        f"--set=cassandra.port={isolated_config.cassandra.port}",
        f"--set=cassandra.keyspace={keyspace}",
        f"--set=kafka.bootstrap_servers={isolated_config.kafka.bootstrap_servers}",
        f"--set=kafka.topic={isolated_config.kafka.topic}",
    ]

    assert fraudshop_main(["rejects", "list", *settings]) == 0
    assert capsys.readouterr().out.split("\n")[2:4] == ["unrecognised_format        1", "invalid_amount             1"]

    assert fraudshop_main(["rejects", "list", "--reason", "invalid_amount", *settings]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == list(REJECT_LIST_COLUMNS)
    assert "amount '12,50' is not a number" in listing[2]

    assert fraudshop_main(["rejects", "replay", "--reason", "invalid_amount", *settings]) == 0
    assert "replayed 1 record(s)" in capsys.readouterr().out
    consumer = KafkaConsumer(
        isolated_config.kafka.topic,
        **kafka_client_settings(isolated_config.kafka),
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    assert [message.value.decode() for message in consumer] == [RAW[0]]
    consumer.close()
    remaining = {row.reason for row in cassandra.execute(f"SELECT reason FROM {keyspace}.transaction_rejects")}
    assert remaining == {"unrecognised_format"}


def test_unknown_reason_is_refused(isolated_config: Config, cassandra: Session) -> None:
    settings = [f"--set=cassandra.port={isolated_config.cassandra.port}", "--set=cassandra.keyspace=x"]
    with pytest.raises(ValueError, match="unknown reason 'nope'"):
        fraudshop_main(["rejects", "list", "--reason", "nope", *settings])
