"""The job's input: the transaction topic read by Spark's Kafka source."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_source_options
from fraudshop.pipeline.micro_batch import BATCH_TIMESTAMP


def transaction_records(spark: SparkSession, kafka: KafkaConfig) -> DataFrame:
    """Kafka records plus one tick row (``topic`` NULL) per second from Spark's rate source, so a
    micro-batch, and with it the late-change scan, runs every trigger even when no transaction
    arrives. Every row carries the batch timestamp."""
    from_kafka = spark.readStream.format("kafka").options(**kafka_source_options(kafka)).load()
    ticks = spark.readStream.format("rate").option("rowsPerSecond", 1).load()
    no_record = ticks.select(
        F.lit(None).cast("binary").alias("value"),
        F.lit(None).cast("string").alias("topic"),
        F.lit(None).cast("int").alias("partition"),
        F.lit(None).cast("long").alias("offset"),
        "timestamp",
    )
    return (
        from_kafka.select("value", "topic", "partition", "offset", "timestamp")
        .unionByName(no_record)
        .withColumn(BATCH_TIMESTAMP, F.current_timestamp())
    )
