"""The detection stream: Kafka records into :class:`MicroBatchProcessor`, checkpointed."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from fraudshop.cassandra_store import CassandraStore
from fraudshop.config import Config, KafkaConfig
from fraudshop.micro_batch import BATCH_TIMESTAMP, MicroBatchProcessor, is_kafka_data_loss
from fraudshop.progress import ProgressReporter

QUERY_NAME = "fraudshop_detect_fraud"
#: Exit code of a job stopped because Kafka lost records it had not read (EX_DATAERR).
KAFKA_DATA_LOSS_EXIT_CODE = 65


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


def explain_stream_failure(error: BaseException) -> tuple[str, int]:
    """What to tell the operator when the stream fails, and the job's exit code. Only the first
    line of Spark's error is kept: the rest restates the query plan."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if is_kafka_data_loss(error):
        # Spark's own words naming the partition and offsets, wherever the wrapping put them.
        named = re.search(r"Cannot fetch offset \d+ \([^)]*\)|\S+ offset was changed from \d+ to \d+", str(error))
        cause = named.group(0) if named else lines[0]
        return (
            "Kafka no longer holds records this job had not read yet (expired by retention, or the topic was "
            "deleted or recreated). The job stops instead of skipping them (kafka.fail_on_data_loss = true): "
            "replay them from their source, or restart with kafka.fail_on_data_loss=false to skip them, which "
            f"Spark then logs as a warning. Spark said: {cause}",
            KAFKA_DATA_LOSS_EXIT_CODE,
        )
    return f"the detection stream failed: {lines[0] if lines else type(error).__name__}", 1


def start_detection_query(spark: SparkSession, config: Config) -> StreamingQuery:
    """Start the one streaming query of the job; checkpointing makes restarts resume where it stopped."""
    store = CassandraStore(spark, config.cassandra, job_id=str(config.job.checkpoint_dir))
    progress = ProgressReporter(Path(config.job.progress_file).expanduser() if config.job.progress_file else None)
    spark.streams.addListener(progress)
    processor = MicroBatchProcessor(
        store,
        window_seconds=config.job.change_window_seconds,
        max_record_bytes=config.job.max_record_bytes,
        max_future_skew_seconds=config.job.max_future_skew_seconds,
        change_scan_margin=timedelta(seconds=config.job.change_scan_margin_seconds),
        batch_attempts=config.job.batch_attempts,
        batch_retry_backoff_seconds=config.job.batch_retry_backoff_seconds,
        batch_timeout_seconds=config.job.batch_timeout_seconds,
        on_batch_done=progress.batch_done,
    )
    return (
        transaction_records(spark, config.kafka)
        .writeStream.queryName(QUERY_NAME)
        .foreachBatch(processor)
        .option("checkpointLocation", str(config.job.checkpoint_dir))
        .trigger(processingTime=config.job.trigger_interval)
        .start()
    )
