"""The job's input: the transaction topic read by Spark's Kafka source."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_source_options
from fraudshop.pipeline.micro_batch import BATCH_TIMESTAMP


def transaction_records(spark: SparkSession, kafka: KafkaConfig) -> DataFrame:
    """Kafka records, each carrying the micro-batch's timestamp."""
    from_kafka = spark.readStream.format("kafka").options(**kafka_source_options(kafka)).load()
    return from_kafka.select("value", "topic", "partition", "offset", "timestamp").withColumn(
        BATCH_TIMESTAMP, F.current_timestamp()
    )
