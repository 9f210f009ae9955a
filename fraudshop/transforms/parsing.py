"""Kafka records → typed transactions, or a reject reason for each record that cannot be one.

Every record yields exactly one row: valid ones carry ``reject_reason = NULL``, the others a reason code
and a detail. Nothing here raises on bad input, so one malformed record can never kill the stream.
"""

from __future__ import annotations

import functools

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from fraudshop.model.records import (
    CHANNELS,
    JSON_FIELDS,
    LEGACY_FIELDS,
    LEGACY_MERCHANT_FIELDS,
    MERCHANT_CATEGORY_PATTERN,
    MERCHANT_FIELDS,
    REJECT_REASONS,
    REQUIRED_FIELDS,
    TEXT_FIELDS,
)
from fraudshop.model.tables import KAFKA_POSITION, TRANSACTION_COLUMNS

_CORRUPT = "_corrupt_record"
# Everything is read as text, then typed here, so a bad value gives a precise reason instead of nulling the record.
_JSON_SCHEMA = StructType([StructField(name, StringType()) for name in (*JSON_FIELDS, _CORRUPT)])
#: The field counts a semicolon record may have: the original's, or the original's and the merchant fields.
_LEGACY_FIELD_COUNTS = (len(LEGACY_FIELDS), len(LEGACY_MERCHANT_FIELDS))
# Anchored with \z: Java's $ also matches before a final line break, and trimming keeps line breaks.
_MERCHANT_CATEGORY_REGEX = rf"^(?:{MERCHANT_CATEGORY_PATTERN.pattern})\z"


def _is_finite(value: Column) -> Column:
    return ~F.isnan(value) & (F.abs(value) != float("inf"))


def _reject_reason(max_record_bytes: int, max_future_skew_seconds: int) -> tuple[Column, Column]:
    """(reason code, detail) of the first rule a record breaks; both NULL for a valid record."""
    tranpostdt, amount, tranamt = F.col("tranpostdt"), F.col("amount"), F.col("tranamt")
    latest_allowed = F.col("source_timestamp") + F.expr(f"INTERVAL {int(max_future_skew_seconds)} SECONDS")

    def text(name: str) -> Column:
        return F.col(f"{name}_text")

    def quoting(name: str, complaint: str) -> Column:
        return F.concat(F.lit(f"{name} '"), text(name), F.lit(f"' {complaint}"))

    def not_text(name: str) -> tuple[Column, str, Column]:
        # from_json renders a JSON object or array given where text belongs back as text
        return (
            text(name).startswith("{") | text(name).startswith("["),
            f"invalid_{name}",
            F.lit(f"{name} must be text, got a JSON object or array"),
        )

    rules: list[tuple[Column, str, Column]] = [
        (
            F.col("record_bytes") > max_record_bytes,
            "oversize_record",
            F.format_string(f"record is %d bytes, more than the {max_record_bytes} allowed", "record_bytes"),
        ),
        (F.col("format").isNull(), "unrecognised_format", F.lit("neither a JSON object nor semicolon-separated text")),
        (F.col(_CORRUPT).isNotNull(), "malformed_json", F.lit("starts like a JSON object but does not parse as one")),
        (
            (F.col("format") == "legacy") & ~F.col("legacy_field_count").isin(*_LEGACY_FIELD_COUNTS),
            "legacy_field_count",
            F.format_string(
                f"semicolon record has %d fields, expected {len(LEGACY_FIELDS)}"
                f" (or {len(LEGACY_MERCHANT_FIELDS)}, ending {';'.join(MERCHANT_FIELDS)})",
                "legacy_field_count",
            ),
        ),
        *[
            (text(name).isNull(), f"missing_{name}", F.lit(f"required field {name} is missing or empty"))
            for name in REQUIRED_FIELDS
        ],
        not_text("account_no"),
        not_text("tranid"),
        (tranpostdt.isNull(), "invalid_tranpostdt", quoting("tranpostdt", "is not an ISO-8601 timestamp")),
        (amount.isNull(), "invalid_amount", quoting("amount", "is not a number")),
        (~_is_finite(amount), "non_finite_amount", quoting("amount", "is not finite")),
        (
            text("tranamt").isNotNull() & (tranamt.isNull() | ~_is_finite(tranamt)),
            "invalid_tranamt",
            quoting("tranamt", "is not a finite number"),
        ),
        not_text("merchant_id"),
        (
            ~text("merchant_category").rlike(_MERCHANT_CATEGORY_REGEX),
            "invalid_merchant_category",
            quoting("merchant_category", "is not an ISO 18245 merchant category code (four digits)"),
        ),
        (
            ~F.col("channel").isin(*CHANNELS),
            "invalid_channel",
            quoting("channel", f"is not one of {', '.join(CHANNELS)}"),
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
    # Parsed once per record into columns of their own: referenced from every field's expression
    # instead, the JSON would be parsed again for each field (Spark does not share an expression
    # between the branches of CASE WHEN).
    raw = F.col("raw_value")
    decode = (
        F.col("*"),
        F.ltrim(raw).startswith("{").alias("_is_json"),
        F.from_json(raw, _JSON_SCHEMA, {"columnNameOfCorruptRecord": _CORRUPT}).alias("_json"),
        F.split(raw, ";", -1).alias("_legacy"),
    )
    is_json, legacy_parts = F.col("_is_json"), F.col("_legacy")

    def field(name: str) -> Column:
        # A 14-field record has no merchant fields: getItem past the end is NULL.
        legacy_value = (
            legacy_parts.getItem(LEGACY_MERCHANT_FIELDS.index(name)) if name in LEGACY_MERCHANT_FIELDS else F.lit(None)
        )
        trimmed = F.trim(F.when(is_json, F.col("_json").getField(name)).otherwise(legacy_value))
        return F.when(trimmed != "", trimmed)  # blank → NULL

    fields = (
        F.col("*"),  # the decoding columns too: the final projection leaves them out
        F.when(is_json, "json").when(F.size(legacy_parts) > 1, "legacy").alias("format"),
        F.when(is_json, F.col("_json").getField(_CORRUPT)).alias(_CORRUPT),
        F.size(legacy_parts).alias("legacy_field_count"),
        *[field(name).alias(f"{name}_text") for name in JSON_FIELDS],
    )
    typed = (
        F.col("*"),
        F.date_trunc("millisecond", F.col("tranpostdt_text").cast("timestamp")).alias("tranpostdt"),
        F.col("amount_text").cast("double").alias("amount"),
        F.col("tranamt_text").cast("double").alias("tranamt"),
        *[F.col(f"{name}_text").alias(name) for name in ("account_no", "tranid", *TEXT_FIELDS)],
        F.col("merchant_id_text").alias("merchant_id"),
        F.col("merchant_category_text").alias("merchant_category"),
        F.lower("channel_text").alias("channel"),  # a bank's feed may say POS
    )
    reason, detail = _reject_reason(max_record_bytes, max_future_skew_seconds)
    judged = (
        *[F.col(name) for name in (*TRANSACTION_COLUMNS, "raw_value")],
        reason.alias("reject_reason"),
        detail.alias("reject_detail"),
        *[F.col(name) for name in carried],
    )
    return record, decode, fields, typed, judged


def parse_transaction_records(
    records: DataFrame, max_record_bytes: int = 65536, max_future_skew_seconds: int = 300, carried: tuple[str, ...] = ()
) -> DataFrame:
    """Kafka rows (``value``, ``topic``, ``partition``, ``offset``, ``timestamp``) → the transaction
    columns, ``raw_value``, ``reject_reason``, ``reject_detail``, then the ``carried`` columns unchanged.
    Timestamps are truncated to the millisecond, Cassandra's precision, so the job compares what it stores."""
    parsed = records
    for projection in _parsing_projections(max_record_bytes, max_future_skew_seconds, carried):
        parsed = parsed.select(*projection)
    return parsed


def valid_transactions(parsed: DataFrame, carried: tuple[str, ...] = ()) -> DataFrame:
    """Rows of :func:`parse_transaction_records` that are transactions, as bank.transaction rows (then ``carried``)."""
    return parsed.where(F.col("reject_reason").isNull()).select(*TRANSACTION_COLUMNS, *carried)


def rejected_records(parsed: DataFrame) -> DataFrame:
    """Rows of :func:`parse_transaction_records` that are not, as bank.transaction_rejects rows (but rejected_at)."""
    return parsed.where(F.col("reject_reason").isNotNull()).select(
        F.col("reject_reason").alias("reason"),
        *KAFKA_POSITION,
        F.col("reject_detail").alias("detail"),
        "raw_value",
        "source_timestamp",
    )
