"""spark-submit entry point: the original proofshop's design, the benchmark's baseline.

As the original did: two streaming queries that each read the Kafka topic, one writing the
parsed transactions to ``transaction``, the other joining them to ``cust_change`` (a static
Cassandra DataFrame, re-read in full on every micro-batch) and writing the matches to
``cust_fraud``; one Cassandra ``writeStream`` per table. On fraudshop's schema, parser and 24 h
rule so its output is comparable; it is a measurement baseline, not a product (no rejects, no
late changes, no ``cust_fraud_by_day``).

    spark-submit --packages <connector jars> fraudshop/lab/bench/proofshop_baseline.py [--set section.key=value ...]
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.config import Config
from fraudshop.io.cassandra.store import CASSANDRA_FORMAT, read_cassandra_table
from fraudshop.io.kafka.settings import kafka_source_options
from fraudshop.jobs.session import start_job_session
from fraudshop.model.tables import ALERT_COLUMNS
from fraudshop.pipeline.progress import ProgressReporter
from fraudshop.transforms.parsing import parse_transaction_records, valid_transactions


def transactions(spark: SparkSession, config: Config) -> DataFrame:
    """A fresh read of the topic: each query that uses it reads Kafka on its own."""
    records = spark.readStream.format("kafka").options(**kafka_source_options(config.kafka)).load()
    return valid_transactions(
        parse_transaction_records(records, config.job.max_record_bytes, config.job.max_future_skew_seconds)
    )


def alerts(spark: SparkSession, config: Config) -> DataFrame:
    # directJoinSetting=off: the original's stream-static join scans the whole table each batch.
    changes = read_cassandra_table(spark, config.cassandra.keyspace, "cust_change", directJoinSetting="off")
    window = F.expr(f"INTERVAL {config.job.change_window_seconds} SECONDS")
    matches = transactions(spark, config).join(changes, "account_no")
    in_window = (F.col("last_updated") <= F.col("tranpostdt")) & (F.col("tranpostdt") < F.col("last_updated") + window)
    return (
        matches.where(in_window)
        .withColumn("qualifying_changes", F.lit(1))
        .select(*ALERT_COLUMNS, F.current_timestamp().alias("detected_at"))
    )


def main() -> None:
    config, spark = start_job_session("the original proofshop's design (benchmark baseline)", "proofshop-baseline")
    if config.job.progress_file:
        spark.streams.addListener(ProgressReporter(Path(config.job.progress_file)))
    for table, rows in (("transaction", transactions(spark, config)), ("cust_fraud", alerts(spark, config))):
        (
            rows.writeStream.queryName(f"baseline_{table}")
            .format(CASSANDRA_FORMAT)
            .options(keyspace=config.cassandra.keyspace, table=table)
            .option("checkpointLocation", str(config.job.checkpoint_dir / table))
            .trigger(processingTime=config.job.trigger_interval)
            .start()
        )
    spark.streams.awaitAnyTermination()


if __name__ == "__main__":
    main()
