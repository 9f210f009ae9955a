"""Parsing of both record formats, and a reason for every record that is not a transaction."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fraudshop.model.records import (
    CHANNELS,
    JSON_FIELDS,
    LEGACY_FIELDS,
    LEGACY_MERCHANT_FIELDS,
    MERCHANT_CATEGORY_PATTERN,
)
from fraudshop.model.tables import TRANSACTION_COLUMNS
from fraudshop.transforms.parsing import parse_transaction_records, rejected_records, valid_transactions
from tests.unit.kafka_rows import RECEIVED_AT, kafka_records

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "fraudshop" / "model"


def legacy(**fields: str) -> str:
    return ";".join(fields.get(name, "") for name in LEGACY_FIELDS)


def legacy_with_merchant(**fields: str) -> str:
    """The 17-field semicolon record: the original's 14, then merchant_id;merchant_category;channel."""
    return ";".join(fields.get(name, "") for name in LEGACY_MERCHANT_FIELDS)


def reasons(spark: SparkSession, values: list[str | bytes]) -> list[str | None]:
    parsed = parse_transaction_records(kafka_records(spark, values))
    return [row.reject_reason for row in parsed.orderBy("source_offset").collect()]


def test_json_schema_file_documents_the_parsed_fields() -> None:
    documented = json.loads((SCHEMAS_DIR / "transaction.schema.json").read_text())
    assert set(documented["properties"]) == set(JSON_FIELDS)
    assert documented["required"] == ["account_no", "tranpostdt", "tranid", "amount"]
    assert documented["properties"]["merchant_category"]["pattern"] == f"^{MERCHANT_CATEGORY_PATTERN.pattern}$"
    assert tuple(documented["properties"]["channel"]["enum"]) == CHANNELS


def test_json_and_legacy_records_parse_to_the_same_transaction(spark: SparkSession) -> None:
    as_json = json.dumps(
        {
            "account_no": "ACC-1",
            "tranpostdt": "2026-11-23T10:15:02.123Z",
            "tranid": "T1",
            "amount": 42.5,
            "cardnum": "4111",
            "trancd": "POS",
            "tranamt": "42.50",
        }
    )
    as_legacy = legacy(
        account_no="ACC-1",
        tranpostdt="2026-11-23 10:15:02.123",
        tranid="T1",
        amount="42.5",
        cardnum="4111",
        trancd="POS",
        tranamt="42.50",
    )
    parsed = valid_transactions(parse_transaction_records(kafka_records(spark, [as_json, as_legacy])))
    rows = parsed.drop("source_offset").collect()
    assert len(rows) == 2
    assert rows[0] == rows[1]
    row = rows[0]
    assert (row.account_no, row.tranid, row.amount, row.tranamt, row.cardnum, row.trancd) == (
        "ACC-1",
        "T1",
        42.5,
        42.5,
        "4111",
        "POS",
    )
    assert row.tranpostdt == datetime(2026, 11, 23, 10, 15, 2, 123000)
    assert row.merchant is None and row.bucket is None


MERCHANT = {"merchant_id": "M0042", "merchant_category": "5814", "channel": "pos"}


def test_json_and_17_field_legacy_records_carry_the_merchant_alike(spark: SparkSession) -> None:
    key = {"account_no": "ACC-1", "tranpostdt": "2026-11-23 10:15:02.123", "tranid": "T1", "amount": "4.5"}
    records: list[str | bytes] = [json.dumps({**key, **MERCHANT}), legacy_with_merchant(**key, **MERCHANT)]
    rows = valid_transactions(parse_transaction_records(kafka_records(spark, records))).drop("source_offset").collect()
    assert len(rows) == 2
    assert rows[0] == rows[1]
    assert (rows[0].merchant_id, rows[0].merchant_category, rows[0].channel) == ("M0042", "5814", "pos")


def test_the_original_14_field_records_have_no_merchant(spark: SparkSession) -> None:
    # The original's trancd and trandescription were placeholders ("tranCd1", "this is the transaction
    # description"): nothing in its 14 fields maps to a merchant, so the merchant fields are NULL.
    record = legacy(account_no="A", tranpostdt="2026-11-23 10:00:00", tranid="T", amount="1", trancd="tranCd1")
    (row,) = parse_transaction_records(kafka_records(spark, [record])).collect()
    assert row.reject_reason is None
    assert (row.merchant_id, row.merchant_category, row.channel, row.trancd) == (None, None, None, "tranCd1")


def test_merchant_fields_are_trimmed_blank_is_absent_and_channel_ignores_case(spark: SparkSession) -> None:
    cases: list[tuple[dict[str, object], tuple[str | None, ...]]] = [
        ({"merchant_id": " M1 ", "merchant_category": " 0742 ", "channel": " POS "}, ("M1", "0742", "pos")),
        ({"merchant_id": "", "merchant_category": "  ", "channel": ""}, (None, None, None)),
        ({"channel": "Online"}, (None, None, "online")),
        ({"channel": "aTm", "merchant_category": 6011}, (None, "6011", "atm")),  # a JSON number is its digits
        ({"merchant_id": 42}, ("42", None, None)),  # as account_no: a number is its text
    ]
    records: list[str | bytes] = [with_(**fields) for fields, _ in cases]
    rows = parse_transaction_records(kafka_records(spark, records)).orderBy("source_offset").collect()
    assert [(row.reject_reason, (row.merchant_id, row.merchant_category, row.channel)) for row in rows] == [
        (None, expected) for _, expected in cases
    ]
    legacy_record = legacy_with_merchant(
        account_no="A", tranpostdt="2026-11-23 10:00:00", tranid="T", amount="1", merchant_id=" ", channel="ATM"
    )
    (row,) = parse_transaction_records(kafka_records(spark, [legacy_record])).collect()
    assert (row.reject_reason, row.merchant_id, row.merchant_category, row.channel) == (None, None, None, "atm")


def test_a_wrong_field_count_names_both_counts_a_semicolon_record_may_have(spark: SparkSession) -> None:
    (row,) = parse_transaction_records(kafka_records(spark, ["A;2026-11-23 10:00:00;T;10"])).collect()
    assert row.reject_reason == "legacy_field_count"
    assert row.reject_detail == (
        "semicolon record has 4 fields, expected 14 (or 17, ending merchant_id;merchant_category;channel)"
    )


def test_valid_transactions_have_the_table_columns_and_lineage(spark: SparkSession) -> None:
    record = json.dumps({"account_no": "A", "tranpostdt": "2026-11-23T11:00:00Z", "tranid": "T", "amount": 1})
    parsed = valid_transactions(parse_transaction_records(kafka_records(spark, [record])))
    assert tuple(parsed.columns) == TRANSACTION_COLUMNS
    row = parsed.first()
    assert row is not None
    assert (row.source_topic, row.source_partition, row.source_offset) == ("transaction", 0, 0)
    assert row.source_timestamp == RECEIVED_AT.replace(tzinfo=None)


GOOD = {"account_no": "A", "tranpostdt": "2026-11-23T10:00:00Z", "tranid": "T", "amount": 10}


def with_(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


def without(name: str) -> str:
    return json.dumps({k: v for k, v in GOOD.items() if k != name})


TIMESTAMP_CASES = {
    "2026-11-23T10:00:00Z": datetime(2026, 11, 23, 10, 0, 0),
    "2026-11-23T12:00:00+02:00": datetime(2026, 11, 23, 10, 0, 0),
    "2026-11-23T05:00:00-05:00": datetime(2026, 11, 23, 10, 0, 0),
    "2026-11-23 10:00:00": datetime(2026, 11, 23, 10, 0, 0),  # naive is UTC
    "2026-11-23T10:00:00.1239Z": datetime(2026, 11, 23, 10, 0, 0, 123000),  # Cassandra keeps ms
    # The night US clocks go back: both 01:30 local times are distinct UTC instants.
    "2026-11-01T01:30:00-04:00": datetime(2026, 11, 1, 5, 30, 0),
    "2026-11-01T01:30:00-05:00": datetime(2026, 11, 1, 6, 30, 0),
}


def test_timestamps_become_utc_instants(spark: SparkSession) -> None:
    # One DataFrame for all cases: a Spark job per case would make the suite crawl.
    texts = list(TIMESTAMP_CASES)
    records: list[str | bytes] = [with_(tranpostdt=text) for text in texts]
    rows = parse_transaction_records(kafka_records(spark, records)).orderBy("source_offset").collect()
    assert {text: (row.reject_reason, row.tranpostdt) for text, row in zip(texts, rows, strict=True)} == {
        text: (None, expected) for text, expected in TIMESTAMP_CASES.items()
    }


def test_blank_optional_fields_are_absent_and_required_fields_are_trimmed(spark: SparkSession) -> None:
    record = legacy(account_no=" ACC-9 ", tranpostdt="2026-11-23 10:00:00", tranid=" T9", amount=" 7 ", bucket="  ")
    row = parse_transaction_records(kafka_records(spark, [record])).first()
    assert row is not None and row.reject_reason is None
    assert (row.account_no, row.tranid, row.amount, row.bucket) == ("ACC-9", "T9", 7.0, None)


BAD_RECORDS: list[tuple[str | bytes, str]] = [
    ("hello world", "unrecognised_format"),
    ("", "unrecognised_format"),
    ('{"account_no": "A", ', "malformed_json"),
    ("[1, 2]", "unrecognised_format"),
    ("A;2026-11-23 10:00:00;T;10", "legacy_field_count"),
    (legacy(account_no="A", tranpostdt="2026-11-23 10:00:00", tranid="T", amount="1") + ";extra", "legacy_field_count"),
    (without("account_no"), "missing_account_no"),
    (with_(account_no="  "), "missing_account_no"),
    (without("tranid"), "missing_tranid"),
    (without("tranpostdt"), "missing_tranpostdt"),
    (without("amount"), "missing_amount"),
    (with_(account_no={"id": 1}), "invalid_account_no"),
    (with_(tranid=[1, 2]), "invalid_tranid"),
    (with_(tranpostdt="yesterday"), "invalid_tranpostdt"),
    (with_(tranpostdt="2026-13-01T00:00:00Z"), "invalid_tranpostdt"),
    (with_(amount="12,50"), "invalid_amount"),
    (with_(amount=True), "invalid_amount"),
    (with_(amount="NaN"), "non_finite_amount"),
    (with_(amount="-Infinity"), "non_finite_amount"),
    (with_(amount="1e400"), "non_finite_amount"),
    (with_(tranamt="abc"), "invalid_tranamt"),
    (with_(merchant_id={"id": "M1"}), "invalid_merchant_id"),
    (with_(merchant_id=["M1"]), "invalid_merchant_id"),
    (with_(merchant_category="541"), "invalid_merchant_category"),
    (with_(merchant_category="54110"), "invalid_merchant_category"),
    (with_(merchant_category="54l1"), "invalid_merchant_category"),
    (with_(merchant_category="5411\n"), "invalid_merchant_category"),  # Java's $ would let it through
    (with_(merchant_category="\u0665\u0664\u0661\u0661"), "invalid_merchant_category"),  # Arabic-Indic digits
    (with_(merchant_category=5411.0), "invalid_merchant_category"),
    (with_(channel="ecom"), "invalid_channel"),
    (with_(channel="point of sale"), "invalid_channel"),
    (with_(channel=["pos"]), "invalid_channel"),
    (
        legacy_with_merchant(account_no="A", tranpostdt="2026-11-23 10:00:00", tranid="T", amount="1", channel="web"),
        "invalid_channel",
    ),
    (
        legacy_with_merchant(account_no="A", tranpostdt="2026-11-23 10:00:00", tranid="T", amount="1") + ";x",
        "legacy_field_count",
    ),  # 18 fields
    (";".join(["A", "2026-11-23 10:00:00", "T", "1", *[""] * 12]), "legacy_field_count"),  # 16 fields
    (with_(merchant_category="bad", channel="bad", tranpostdt="2026-11-24T00:00:00Z"), "invalid_merchant_category"),
    (with_(channel="bad", tranpostdt="2026-11-24T00:00:00Z"), "invalid_channel"),  # before the future check
    (legacy(account_no="A", tranpostdt="2026-11-23 10:00:00", tranid="T", amount="abc"), "invalid_amount"),
    (with_(tranpostdt="2026-11-23T12:05:00.001Z"), "future_tranpostdt"),  # 300 s + 1 ms after receipt
    (b'{"account_no": "A", "tranid": "T\xff"}', "missing_tranpostdt"),  # invalid UTF-8 is kept, not fatal
]


def test_each_bad_record_gets_its_reason(spark: SparkSession) -> None:
    values = [value for value, _ in BAD_RECORDS]
    assert list(zip(values, reasons(spark, values), strict=True)) == BAD_RECORDS


def test_a_transaction_at_the_future_skew_limit_is_accepted(spark: SparkSession) -> None:
    assert reasons(spark, [with_(tranpostdt="2026-11-23T12:05:00Z")]) == [None]


def test_oversize_records_are_rejected_before_parsing(spark: SparkSession) -> None:
    big = with_(trandescription="x" * 200)
    parsed = parse_transaction_records(kafka_records(spark, [big]), max_record_bytes=100)
    row = parsed.first()
    assert row is not None
    assert row.reject_reason == "oversize_record"
    assert row.reject_detail == f"record is {len(big)} bytes, more than the 100 allowed"


def test_rejects_keep_the_raw_record_coordinates_and_reason(spark: SparkSession) -> None:
    values: list[str | bytes] = [with_(), "garbage", with_(amount="ten")]
    rejects = rejected_records(parse_transaction_records(kafka_records(spark, values)))
    expected = spark.createDataFrame(
        [
            (
                "unrecognised_format",
                "transaction",
                0,
                1,
                "neither a JSON object nor semicolon-separated text",
                "garbage",
                RECEIVED_AT,
            ),
            ("invalid_amount", "transaction", 0, 2, "amount 'ten' is not a number", with_(amount="ten"), RECEIVED_AT),
        ],
        "reason string, source_topic string, source_partition int, source_offset long, detail string, "
        "raw_value string, source_timestamp timestamp",
    )
    assert_df_equality(rejects, expected, ignore_row_order=True, ignore_nullable=True)


def test_every_record_yields_exactly_one_row(spark: SparkSession) -> None:
    values: list[str | bytes] = [with_(), "garbage", with_(amount="inf"), without("tranid")]
    parsed = parse_transaction_records(kafka_records(spark, values))
    assert parsed.count() == len(values)
    assert parsed.where(F.col("reject_reason").isNull()).count() == 1


def test_carried_columns_pass_through_parsing_unchanged_for_valid_and_rejected_records(spark: SparkSession) -> None:
    valid = json.dumps({"account_no": "ACC-1", "tranpostdt": "2026-11-23T10:00:00Z", "tranid": "T1", "amount": 1})
    records = kafka_records(spark, [valid, "not a record"]).withColumn("batch_id", F.col("offset") + 100)
    parsed = parse_transaction_records(records, carried=("batch_id",))
    assert parsed.columns[-1] == "batch_id"
    assert_df_equality(
        parsed.select("source_offset", "batch_id", F.col("reject_reason").isNull().alias("valid")),
        spark.createDataFrame([(0, 100, True), (1, 101, False)], "source_offset long, batch_id long, valid boolean"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # The projections are built once per setting; without carried columns the output has none.
    assert parse_transaction_records(records).columns == parsed.columns[:-1]
