"""The producer's records are what the job parses, in both formats; CSV replay keeps every field;
a record the broker did not take is reported, never dropped silently."""

from __future__ import annotations

import itertools
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from kafka.errors import KafkaTimeoutError, NotEnoughReplicasError
from kafka.future import Future
from pyspark.sql import SparkSession

from fraudshop.config import load_config
from fraudshop.io.kafka import producer as producer_module
from fraudshop.io.kafka.producer import UndeliveredRecordsError, checked_sender, encode, send_transactions
from fraudshop.lab.workload import csv_transactions, synthetic_transactions
from fraudshop.model.records import LEGACY_FIELDS
from fraudshop.transforms.parsing import parse_transaction_records, valid_transactions
from tests.unit.kafka_rows import kafka_records

FIXED_NOW = datetime(2026, 11, 23, 11, 59, 0, 123000, tzinfo=UTC)


def test_synthetic_workload_is_seeded_and_plausible() -> None:
    first = list(itertools.islice(synthetic_transactions(20, seed=7, clock=lambda: FIXED_NOW), 500))
    again = list(itertools.islice(synthetic_transactions(20, seed=7, clock=lambda: FIXED_NOW), 500))
    assert first == again
    assert len({t["tranid"] for t in first}) == 500
    assert {t["account_no"] for t in first} <= {f"ACC{i:07d}" for i in range(20)}
    assert all(0 < t["amount"] <= 25_000 for t in first)
    # A card belongs to one account.
    assert len({(t["account_no"], t["cardnum"]) for t in first}) == len({t["account_no"] for t in first})


def test_both_encodings_parse_back_to_the_same_transactions(spark: SparkSession) -> None:
    sample = list(itertools.islice(synthetic_transactions(5, seed=1, clock=lambda: FIXED_NOW), 10))
    values = [encode(t, "json") for t in sample] + [encode(t, "legacy") for t in sample]
    parsed = parse_transaction_records(kafka_records(spark, values)).orderBy("source_offset").collect()
    assert [row.reject_reason for row in parsed] == [None] * 20
    as_json, as_legacy = parsed[:10], parsed[10:]
    for sent, json_row, legacy_row in zip(sample, as_json, as_legacy, strict=True):
        assert (json_row.account_no, json_row.tranid, json_row.amount) == (
            sent["account_no"],
            sent["tranid"],
            sent["amount"],
        )
        assert json_row.tranpostdt == FIXED_NOW.replace(tzinfo=None)
        assert (legacy_row.account_no, legacy_row.tranid, legacy_row.amount, legacy_row.tranpostdt) == (
            json_row.account_no,
            json_row.tranid,
            json_row.amount,
            json_row.tranpostdt,
        )
        assert json_row.merchant == sent["merchant"] and legacy_row.merchant is None  # not in the legacy format
        # The merchant fields travel in both: the semicolon record is the 17-field one.
        merchant = (sent["merchant_id"], sent["merchant_category"], sent["channel"])
        assert (json_row.merchant_id, json_row.merchant_category, json_row.channel) == merchant
        assert (legacy_row.merchant_id, legacy_row.merchant_category, legacy_row.channel) == merchant


def test_csv_with_header_is_replayed_field_for_field(tmp_path: Path) -> None:
    csv_file = tmp_path / "sample.csv"
    csv_file.write_text("account_no,tranpostdt,tranid,amount,merchant\nA1,2026-11-23T10:00:00Z,T1,12.5,SHOP\n")
    assert list(csv_transactions(csv_file, restamp=False)) == [
        {"account_no": "A1", "tranpostdt": "2026-11-23T10:00:00Z", "tranid": "T1", "amount": "12.5", "merchant": "SHOP"}
    ]


def test_headerless_csv_uses_the_original_field_order_and_restamps(tmp_path: Path, spark: SparkSession) -> None:
    csv_file = tmp_path / "original.csv"
    csv_file.write_text("A2,2018-07-29 19:53:13.165,T2,99.0,,4111,,POS,,,,,,\n")
    (row,) = list(csv_transactions(csv_file, restamp=True))
    assert set(row) == {"account_no", "tranpostdt", "tranid", "amount", "cardnum", "trancd"}
    assert datetime.fromisoformat(row["tranpostdt"]).year >= 2026  # "now", as the original producer did
    legacy_value = encode(row, "legacy").decode()
    assert legacy_value.split(";")[LEGACY_FIELDS.index("cardnum")] == "4111"
    assert len(legacy_value.split(";")) == len(LEGACY_FIELDS), "no merchant fields: written as the original wrote it"
    parsed = valid_transactions(
        parse_transaction_records(kafka_records(spark, [legacy_value], received_at=datetime.now(UTC)))
    )
    assert parsed.count() == 1


def test_json_encoding_is_compact_utf8() -> None:
    assert json.loads(encode({"account_no": "Ä", "amount": 1}, "json")) == {"account_no": "Ä", "amount": 1}


class RefusingProducer:
    """Stands in for KafkaProducer where no broker is needed: every ``refuse_every``-th record's
    future fails, with an error a real broker gives, when the records are flushed (as a real
    producer's fail once their batch is refused or expires)."""

    instances: ClassVar[list[RefusingProducer]] = []

    def __init__(self, refuse_every: int = 3, **settings: Any) -> None:
        self.refuse_every = refuse_every
        self.settings = settings
        self.pending: list[Future] = []
        self.closed = False
        RefusingProducer.instances.append(self)

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Future:
        future = Future()
        self.pending.append(future)
        return future

    def flush(self, timeout: float | None = None) -> None:
        for number, future in enumerate(self.pending, start=1):
            if number % self.refuse_every == 0:
                future.failure(NotEnoughReplicasError("not enough in-sync replicas"))
            else:
                future.success(None)

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_records_the_broker_refused_make_the_send_fail_naming_how_many(monkeypatch: pytest.MonkeyPatch) -> None:
    RefusingProducer.instances.clear()
    monkeypatch.setattr(producer_module, "KafkaProducer", RefusingProducer)
    transactions = synthetic_transactions(5, seed=1, clock=lambda: FIXED_NOW)
    with pytest.raises(UndeliveredRecordsError, match="3 of 10 records were not delivered") as raised:
        send_transactions(load_config(environ={}).kafka, transactions, rate=0, limit=10)
    assert (raised.value.failed, raised.value.attempted) == (3, 10)
    assert isinstance(raised.value.first_error, NotEnoughReplicasError)
    (producer,) = RefusingProducer.instances
    assert producer.closed
    assert producer.settings["acks"] == "all"


def test_a_send_with_no_broker_fails_and_closes_its_producer() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kafka = load_config(overrides=[f"kafka.bootstrap_servers=127.0.0.1:{port}"], environ={}).kafka
    # api_version given: no version probe, so the failure is the send's (after max_block_ms).
    with (
        pytest.raises(UndeliveredRecordsError, match="1 of 1 records were not delivered") as raised,
        checked_sender(kafka, api_version=(3, 9), max_block_ms=300) as sender,
    ):
        sender.send(b"a record")
        sender.send(b"never attempted: the first failure stops the send")
    assert isinstance(raised.value.first_error, KafkaTimeoutError)
    assert sender.producer._closed
