"""Kafka records → typed transactions, or a reject reason for each record that cannot be one.

Every record yields exactly one row: valid ones carry ``reject_reason = NULL``; the others keep
their raw payload, Kafka coordinates, a reason code and a human-readable detail. Nothing here
raises on bad input, so one malformed record can never kill the stream.
"""

from __future__ import annotations

import functools

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from fraudshop.model.records import JSON_FIELDS, LEGACY_FIELDS, REJECT_REASONS, REQUIRED_FIELDS, TEXT_FIELDS
from fraudshop.model.tables import TRANSACTION_COLUMNS

_CORRUPT = "_corrupt_record"
_JSON_SCHEMA = StructType(
    # Everything is read as text, then typed here, so a bad value gives a precise reason
    # instead of nulling the whole record.
    [StructField(name, StringType()) for name in (*JSON_FIELDS, _CORRUPT)]
)


def _blank_to_null(value: Column) -> Column:
    trimmed = F.trim(value)
    return F.when(trimmed != "", trimmed)


def _is_finite(value: Column) -> Column:
    return ~F.isnan(value) & (F.abs(value) != float("inf"))


def _looks_like_json_container(value: Column) -> Column:
    """A JSON object or array given where text belongs: from_json renders it back as text."""
    return value.startswith("{") | value.startswith("[")


def _field_projections() -> tuple[tuple[Column, ...], tuple[Column, ...]]:
    """Two projections that add one text column per field, from whichever format the record is in."""
    raw = F.col("raw_value")
    # Parsed once per record into columns of their own: referenced from every field's
    # expression instead, the JSON would be parsed again for each field (Spark does not share
    # an expression between the branches of CASE WHEN).
    decode = (
        F.col("*"),
        F.ltrim(raw).startswith("{").alias("_is_json"),
        F.from_json(raw, _JSON_SCHEMA, {"columnNameOfCorruptRecord": _CORRUPT}).alias("_json"),
        F.split(raw, ";", -1).alias("_legacy"),
    )
    is_json = F.col("_is_json")
    legacy_parts = F.col("_legacy")

    def field(name: str) -> Column:
        legacy_value = legacy_parts.getItem(LEGACY_FIELDS.index(name)) if name in LEGACY_FIELDS else F.lit(None)
        return _blank_to_null(F.when(is_json, F.col("_json").getField(name)).otherwise(legacy_value))

    fields = (
        F.col("*"),  # the decoding columns too: the final projection leaves them out
        F.when(is_json, "json").when(F.size(legacy_parts) > 1, "legacy").alias("format"),
        F.when(is_json, F.col("_json").getField(_CORRUPT)).alias(_CORRUPT),
        F.size(legacy_parts).alias("legacy_field_count"),
        *[field(name).alias(f"{name}_text") for name in JSON_FIELDS],
    )
    return decode, fields


def _reject_reason(max_record_bytes: int, max_future_skew_seconds: int) -> tuple[Column, Column]:
    """(reason code, detail) of the first rule a record breaks; both NULL for a valid record."""
    tranpostdt = F.col("tranpostdt")
    amount = F.col("amount")
    tranamt = F.col("tranamt")
    latest_allowed = F.col("source_timestamp") + F.expr(f"INTERVAL {int(max_future_skew_seconds)} SECONDS")

    def quoted(name: str) -> Column:
        return F.concat(F.lit("'"), F.col(f"{name}_text"), F.lit("'"))

    rules: list[tuple[Column, str, Column]] = [
        (
            F.col("record_bytes") > max_record_bytes,
            "oversize_record",
            F.format_string(f"record is %d bytes, more than the {max_record_bytes} allowed", "record_bytes"),
        ),
        (
            F.col("format").isNull(),
            "unrecognised_format",
            F.lit("neither a JSON object nor semicolon-separated text"),
        ),
        (
            F.col(_CORRUPT).isNotNull(),
            "malformed_json",
            F.lit("starts like a JSON object but does not parse as one"),
        ),
        (
            (F.col("format") == "legacy") & (F.col("legacy_field_count") != len(LEGACY_FIELDS)),
            "legacy_field_count",
            F.format_string(f"semicolon record has %d fields, expected {len(LEGACY_FIELDS)}", "legacy_field_count"),
        ),
        *[
            (F.col(f"{name}_text").isNull(), f"missing_{name}", F.lit(f"required field {name} is missing or empty"))
            for name in REQUIRED_FIELDS
        ],
        *[
            (
                _looks_like_json_container(F.col(f"{name}_text")),
                f"invalid_{name}",
                F.lit(f"{name} must be text, got a JSON object or array"),
            )
            for name in ("account_no", "tranid")
        ],
        (
            tranpostdt.isNull(),
            "invalid_tranpostdt",
            F.concat(F.lit("tranpostdt "), quoted("tranpostdt"), F.lit(" is not an ISO-8601 timestamp")),
        ),
        (amount.isNull(), "invalid_amount", F.concat(F.lit("amount "), quoted("amount"), F.lit(" is not a number"))),
        (
            ~_is_finite(amount),
            "non_finite_amount",
            F.concat(F.lit("amount "), quoted("amount"), F.lit(" is not finite")),
        ),
        (
            F.col("tranamt_text").isNotNull() & (tranamt.isNull() | ~_is_finite(tranamt)),
            "invalid_tranamt",
            F.concat(F.lit("tranamt "), quoted("tranamt"), F.lit(" is not a finite number")),
        ),
        (
            tranpostdt > latest_allowed,
            "future_tranpostdt",
            F.format_string(
                f"tranpostdt %s is more than {int(max_future_skew_seconds)} s after Kafka received the record (%s)",
                tranpostdt.cast("string"),
                F.col("source_timestamp").cast("string"),
            ),
        ),
    ]
    assert tuple(code for _, code, _ in rules) == REJECT_REASONS
    reason: Column = F.lit(None).cast("string")
    detail: Column = F.lit(None).cast("string")
    for condition, code, explanation in reversed(rules):
        reason = F.when(condition, F.lit(code)).otherwise(reason)
        detail = F.when(condition, explanation).otherwise(detail)
    return reason, detail


@functools.cache
def _parsing_projections(
    max_record_bytes: int, max_future_skew_seconds: int, carried: tuple[str, ...]
) -> tuple[tuple[Column, ...], ...]:
    """The projections that parse a record, built once per setting: they take several hundred
    calls into the JVM to build, a visible share of a small micro-batch's time when rebuilt for
    every batch. Columns are unresolved expressions, so one set serves every DataFrame."""
    record = (
        F.col("value").cast("string").alias("raw_value"),
        F.length("value").alias("record_bytes"),
        F.col("topic").alias("source_topic"),
        F.col("partition").alias("source_partition"),
        F.col("offset").alias("source_offset"),
        F.col("timestamp").alias("source_timestamp"),
        *[F.col(name) for name in carried],
    )
    typed = (
        F.col("*"),
        F.date_trunc("millisecond", F.col("tranpostdt_text").cast("timestamp")).alias("tranpostdt"),
        F.col("amount_text").cast("double").alias("amount"),
        F.col("tranamt_text").cast("double").alias("tranamt"),
        *[F.col(f"{name}_text").alias(name) for name in ("account_no", "tranid", *TEXT_FIELDS)],
    )
    reason, detail = _reject_reason(max_record_bytes, max_future_skew_seconds)
    judged = (
        *[F.col(name) for name in (*TRANSACTION_COLUMNS, "raw_value")],
        reason.alias("reject_reason"),
        detail.alias("reject_detail"),
        *[F.col(name) for name in carried],
    )
    return (record, *_field_projections(), typed, judged)


def parse_transaction_records(
    records: DataFrame,
    max_record_bytes: int = 65536,
    max_future_skew_seconds: int = 300,
    carried: tuple[str, ...] = (),
) -> DataFrame:
    """Parse Kafka rows (``value``, ``topic``, ``partition``, ``offset``, ``timestamp``).

    Returns the transaction columns, the lineage columns, ``raw_value``, ``reject_reason`` and
    ``reject_detail``, then the ``carried`` columns of ``records`` unchanged. Timestamps become
    UTC instants truncated to the millisecond, Cassandra's precision, so what the job compares is
    exactly what it stores.
    """
    parsed = records
    for projection in _parsing_projections(max_record_bytes, max_future_skew_seconds, carried):
        parsed = parsed.select(*projection)
    return parsed


def valid_transactions(parsed: DataFrame) -> DataFrame:
    """Rows of :func:`parse_transaction_records` that are transactions, as bank.transaction rows."""
    return parsed.where(F.col("reject_reason").isNull()).select(*TRANSACTION_COLUMNS)


def rejected_records(parsed: DataFrame) -> DataFrame:
    """Rows of :func:`parse_transaction_records` that are not transactions, as bank.transaction_rejects rows."""
    return parsed.where(F.col("reject_reason").isNotNull()).select(
        F.col("reject_reason").alias("reason"),
        "source_topic",
        "source_partition",
        "source_offset",
        F.col("reject_detail").alias("detail"),
        "raw_value",
        "source_timestamp",
    )
