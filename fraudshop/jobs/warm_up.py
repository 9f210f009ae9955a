"""spark-submit entry point of ``fraudshop job --prepare``: a short run through the classes the
detection job's driver loads before its first batch, so that its JVM can archive them at exit
(see :mod:`fraudshop.jobs.class_archive`). It reads no record and writes nothing to Cassandra or
Kafka: the job's keyspace must exist (``fraudshop schema apply``), but need hold no data; its topic
need not even exist."""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.config import Config
from fraudshop.io.kafka.settings import kafka_source_options
from fraudshop.jobs.session import start_job_session
from fraudshop.transforms.parsing import parse_transaction_records, rejected_records, valid_transactions

log = logging.getLogger("fraudshop.warm_up")

CASSANDRA = "org.apache.spark.sql.cassandra"
#: An account number no bank uses (Cassandra refuses an empty partition key).
NO_ACCOUNT = "fraudshop-warm-up-no-such-account"
#: How long the Kafka source's query may take to find the topic's end and finish.
QUERY_TIMEOUT_SECONDS = 120


def use_cassandra(spark: SparkSession, config: Config) -> None:
    """The connector's partition read, direct join and write paths (its Java driver, Netty) on the
    job's tables, over an account no row has: nothing is read, nothing is written."""

    def table(name: str) -> DataFrame:
        return spark.read.format(CASSANDRA).options(keyspace=config.cassandra.keyspace, table=name).load()

    no_account = F.col("account_no") == NO_ACCOUNT
    table("cust_change").where(no_account).collect()
    keys = spark.range(1).select(F.lit(NO_ACCOUNT).alias("account_no"))
    keys.join(table("transaction"), "account_no").collect()
    writer = table("transaction").where(no_account).write.format(CASSANDRA).mode("append")
    writer.options(keyspace=config.cassandra.keyspace, table="transaction").save()


def parse_nothing(spark: SparkSession, config: Config) -> None:
    """The job's parsing plan, generated and run over no rows (no Python worker: all in the JVM)."""
    kafka_rows = spark.range(0).select(
        F.lit(b"{}").alias("value"),
        F.lit(config.kafka.topic).alias("topic"),
        F.lit(0).alias("partition"),
        F.col("id").alias("offset"),
        F.current_timestamp().alias("timestamp"),
    )
    parsed = parse_transaction_records(kafka_rows, config.job.max_record_bytes, config.job.max_future_skew_seconds)
    valid_transactions(parsed).collect()
    rejected_records(parsed).collect()


def stream_from_kafka(spark: SparkSession, config: Config) -> None:
    """The job's Kafka source in a streaming query from the topic's end, its checkpoint thrown away.
    A pattern, not ``subscribe``: a missing topic is matched by nothing rather than auto-created."""
    options = kafka_source_options(config.kafka)
    del options["subscribe"]
    options["subscribePattern"] = f"\\Q{config.kafka.topic}\\E"
    options["startingOffsets"] = "latest"

    def count(batch: DataFrame, batch_id: int) -> None:
        batch.count()

    with tempfile.TemporaryDirectory(prefix="fraudshop-warm-up-") as checkpoint:
        query = (
            spark.readStream.format("kafka")
            .options(**options)
            .load()
            .writeStream.foreachBatch(count)
            .option("checkpointLocation", checkpoint)
            .trigger(availableNow=True)
            .start()
        )
        if not query.awaitTermination(QUERY_TIMEOUT_SECONDS):
            query.stop()
            raise TimeoutError(f"the Kafka source's query did not reach the topic's end in {QUERY_TIMEOUT_SECONDS} s")


WARM_UP_STEPS: tuple[Callable[[SparkSession, Config], None], ...] = (use_cassandra, parse_nothing, stream_from_kafka)


def main() -> None:
    config, spark = start_job_session("fraudshop job --prepare: warm-up run", app_name="fraudshop-warm-up")
    failed = []
    for warm_up in WARM_UP_STEPS:
        try:
            warm_up(spark, config)
        except Exception:  # the other steps still run, to show every problem at once
            failed.append(warm_up.__name__)
            log.exception("warm-up step %s failed", warm_up.__name__)
    spark.stop()
    # A failed step loaded only part of what the job loads (Cassandra or Kafka unreachable?): no archive.
    sys.exit(f"warm-up steps failed: {', '.join(failed)}" if failed else 0)


if __name__ == "__main__":
    main()
