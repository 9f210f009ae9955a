"""The job's input: the transaction topic read by Spark's Kafka source."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_source_options
from fraudshop.pipeline.micro_batch import BATCH_TIMESTAMP


def transaction_records(spark: SparkSession, kafka: KafkaConfig, starting_offsets: str | None = None) -> DataFrame:
    """Kafka records, each carrying the micro-batch's timestamp. ``starting_offsets`` (Spark's JSON of
    offsets per partition) replaces ``kafka.starting_offsets`` for a query without a checkpoint."""
    options = kafka_source_options(kafka)
    if starting_offsets:
        options["startingOffsets"] = starting_offsets
    from_kafka = spark.readStream.format("kafka").options(**options).load()
    return from_kafka.select("value", "topic", "partition", "offset", "timestamp").withColumn(
        BATCH_TIMESTAMP, F.current_timestamp()
    )
