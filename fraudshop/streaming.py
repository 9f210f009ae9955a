"""The detection stream: Kafka records into :class:`MicroBatchProcessor`, checkpointed."""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from fraudshop.cassandra_store import CassandraStore
from fraudshop.config import Config, KafkaConfig
from fraudshop.micro_batch import BATCH_TIMESTAMP, MicroBatchProcessor

QUERY_NAME = "fraudshop_detect_fraud"


def kafka_source_options(kafka: KafkaConfig) -> dict[str, str]:
    """Options of Spark's Kafka source, security included."""
    options = {
        "kafka.bootstrap.servers": kafka.bootstrap_servers,
        "subscribe": kafka.topic,
        "startingOffsets": kafka.starting_offsets,
        "failOnDataLoss": str(kafka.fail_on_data_loss).lower(),
        "kafka.security.protocol": kafka.security_protocol,
    }
    if kafka.ssl_truststore_path:
        options["kafka.ssl.truststore.location"] = kafka.ssl_truststore_path
        options["kafka.ssl.truststore.password"] = kafka.ssl_truststore_password
    if kafka.max_offsets_per_trigger > 0:
        options["maxOffsetsPerTrigger"] = str(kafka.max_offsets_per_trigger)
    if kafka.sasl_mechanism:
        login_module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if kafka.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        options["kafka.sasl.mechanism"] = kafka.sasl_mechanism
        options["kafka.sasl.jaas.config"] = (
            f'{login_module} required username="{kafka.sasl_username}" password="{kafka.sasl_password}";'
        )
    return options


def transaction_records(spark: SparkSession, kafka: KafkaConfig) -> DataFrame:
    """The job's input stream: Kafka records, plus one tick row per second from Spark's rate
    source (``topic`` NULL) so a micro-batch runs every trigger even when no transaction arrives;
    the late-change scan runs on every micro-batch. Every row carries the batch timestamp."""
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


def start_detection_query(spark: SparkSession, config: Config) -> StreamingQuery:
    """Start the one streaming query of the job; checkpointing makes restarts resume where it stopped."""
    store = CassandraStore(spark, config.cassandra, job_id=str(config.job.checkpoint_dir))
    processor = MicroBatchProcessor(
        store,
        window_seconds=config.job.change_window_seconds,
        max_record_bytes=config.job.max_record_bytes,
        max_future_skew_seconds=config.job.max_future_skew_seconds,
        change_scan_margin=timedelta(seconds=config.job.change_scan_margin_seconds),
        batch_attempts=config.job.batch_attempts,
        batch_retry_backoff_seconds=config.job.batch_retry_backoff_seconds,
        batch_timeout_seconds=config.job.batch_timeout_seconds,
    )
    return (
        transaction_records(spark, config.kafka)
        .writeStream.queryName(QUERY_NAME)
        .foreachBatch(processor)
        .option("checkpointLocation", str(config.job.checkpoint_dir))
        .trigger(processingTime=config.job.trigger_interval)
        .start()
    )
