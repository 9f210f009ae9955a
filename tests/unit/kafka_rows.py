"""Build DataFrames shaped like Spark's Kafka source output, for DataFrame unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    BinaryType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

KAFKA_SCHEMA = StructType(
    [
        StructField("key", BinaryType()),
        StructField("value", BinaryType()),
        StructField("topic", StringType()),
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("timestamp", TimestampType()),
    ]
)
RECEIVED_AT = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def kafka_records(spark: SparkSession, values: Sequence[str | bytes], received_at: datetime = RECEIVED_AT) -> DataFrame:
    """One Kafka row per value, on partition 0 of topic ``transaction`` at offsets 0, 1, 2, …"""
    rows = [
        (None, value.encode() if isinstance(value, str) else value, "transaction", 0, offset, received_at)
        for offset, value in enumerate(values)
    ]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)
