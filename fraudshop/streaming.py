"""The detection stream: Kafka → parse → bank.transaction, rejects and alerts, one micro-batch at a time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from fraudshop.config import Config, KafkaConfig
from fraudshop.detection import ALERT_COLUMNS, flag_changed_customer_transactions
from fraudshop.parsing import parse_transaction_records, rejected_records, valid_transactions

log = logging.getLogger(__name__)

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"
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


def read_cassandra_table(spark: SparkSession, keyspace: str, table: str) -> DataFrame:
    """A fresh, lazy read of a Cassandra table: each action scans it anew."""
    return spark.read.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table).load()


def write_cassandra_table(rows: DataFrame, keyspace: str, table: str) -> None:
    rows.write.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table).mode("append").save()


@dataclass(frozen=True)
class MicroBatchProcessor:
    """The ``foreachBatch`` body: everything the job does with one micro-batch."""

    keyspace: str
    window_seconds: int
    max_record_bytes: int
    max_future_skew_seconds: int

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        processed_at = datetime.now(timezone.utc)
        parsed = parse_transaction_records(records, self.max_record_bytes, self.max_future_skew_seconds).persist()
        try:
            counts = parsed.agg(
                F.count(F.lit(1)).alias("records"),
                F.count("reject_reason").alias("rejected"),
            ).first()
            if counts is None or counts["records"] == 0:
                return
            transactions = valid_transactions(parsed)
            write_cassandra_table(transactions, self.keyspace, "transaction")
            if counts["rejected"]:
                rejects = rejected_records(parsed).withColumn("rejected_at", F.lit(processed_at))
                write_cassandra_table(rejects, self.keyspace, "transaction_rejects")
            # Read on every micro-batch, so a change recorded while the job runs is used by the next batch.
            changes = read_cassandra_table(records.sparkSession, self.keyspace, "cust_change")
            alerts = (
                flag_changed_customer_transactions(transactions, changes, self.window_seconds)
                .select(*ALERT_COLUMNS)
                .withColumn("detected_at", F.lit(processed_at))
                .persist()
            )
            try:
                write_cassandra_table(alerts, self.keyspace, "cust_fraud")
                write_cassandra_table(
                    alerts.withColumn("day", F.to_date("tranpostdt")), self.keyspace, "cust_fraud_by_day"
                )
                alert_count = alerts.count()
            finally:
                alerts.unpersist()
            log.info(
                "batch %d: %d records, %d transactions, %d rejected, %d alerts",
                batch_id,
                counts["records"],
                counts["records"] - counts["rejected"],
                counts["rejected"],
                alert_count,
            )
        finally:
            parsed.unpersist()


def start_detection_query(spark: SparkSession, config: Config) -> StreamingQuery:
    """Start the one streaming query of the job; checkpointing makes restarts resume where it stopped."""
    records = spark.readStream.format("kafka").options(**kafka_source_options(config.kafka)).load()
    processor = MicroBatchProcessor(
        keyspace=config.cassandra.keyspace,
        window_seconds=config.job.change_window_seconds,
        max_record_bytes=config.job.max_record_bytes,
        max_future_skew_seconds=config.job.max_future_skew_seconds,
    )
    return (
        records.writeStream.queryName(QUERY_NAME)
        .foreachBatch(processor)
        .option("checkpointLocation", str(config.job.checkpoint_dir))
        .trigger(processingTime=config.job.trigger_interval)
        .start()
    )
