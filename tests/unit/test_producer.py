"""The producer's records are what the job parses, in both formats; CSV replay keeps every field."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession

from fraudshop.parsing import parse_transaction_records, valid_transactions
from fraudshop.producer import csv_transactions, encode, synthetic_transactions
from fraudshop.record_format import LEGACY_FIELDS
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
    parsed = valid_transactions(
        parse_transaction_records(kafka_records(spark, [legacy_value], received_at=datetime.now(UTC)))
    )
    assert parsed.count() == 1


def test_json_encoding_is_compact_utf8() -> None:
    assert json.loads(encode({"account_no": "Ä", "amount": 1}, "json")) == {"account_no": "Ä", "amount": 1}
