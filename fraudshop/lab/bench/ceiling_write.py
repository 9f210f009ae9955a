"""spark-submit entry point: the benchmark's ceiling, what one connector write can absorb.

Builds as many ``transaction`` rows as the benchmark's backlog on the Spark side (the workload's
accounts, every column the job writes), caches and materialises them, warms the JVM up with an
untimed write of other rows (a tenth as many), then times ONE connector write of them to the
keyspace's ``transaction`` table, and counts what landed. Started by the
benchmark with the detection job's spark-submit settings (master, connector packages and
settings); its figures go to the JSON file named by ``FIGURES_VARIABLE``.

    BENCH_CEILING_ROWS=500000 BENCH_CEILING_ACCOUNTS=2000 BENCH_CEILING_FIGURES=ceiling.json \\
      spark-submit --packages <connector jars> fraudshop/lab/bench/ceiling_write.py [--set section.key=value ...]
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.io.cassandra.store import read_cassandra_table, write_cassandra_table
from fraudshop.jobs.session import start_job_session
from fraudshop.model.tables import TRANSACTION_COLUMNS

log = logging.getLogger(__name__)

#: The environment the benchmark starts this job with (not FRAUDSHOP_*: that prefix is the config's).
ROWS_VARIABLE = "BENCH_CEILING_ROWS"
ACCOUNTS_VARIABLE = "BENCH_CEILING_ACCOUNTS"
FIGURES_VARIABLE = "BENCH_CEILING_FIGURES"

#: The untimed warm-up write: this share of the rows (at least one batch's worth), so the timed write
#: runs on compiled code paths, as the streaming job's does after its warm-up.
WARMUP_SHARE = 0.1
_WARMUP_MIN_ROWS = 1000

_MERCHANTS = ("GROCERY MART", "FUEL STOP", "COFFEE CORNER", "ONLINE BOOKS", "ELECTRONICS HUB", "CITY TRANSIT")


def ceiling_rows(
    spark: SparkSession, rows: int, accounts: int, topic: str, partitions: int, first_id: int = 0
) -> DataFrame:
    """``rows`` distinct transaction rows over ``accounts`` accounts, numbered from ``first_id``, in
    TRANSACTION_COLUMNS order; the optional fields the workload never sends are null, as the job writes them."""
    row_id = F.col("id")
    merchant = F.element_at(F.array(*(F.lit(name) for name in _MERCHANTS)), (row_id % len(_MERCHANTS) + 1).cast("int"))
    amount = F.round(F.rand(7) * 200 + 1, 2)
    known: dict[str, Column] = {
        "account_no": F.format_string("ACC%07d", F.pmod(F.xxhash64(row_id), F.lit(accounts))),
        # Spread over the last hour, as a backlog's are.
        "tranpostdt": F.timestamp_seconds(F.unix_timestamp() - row_id % 3600),
        "tranid": F.format_string("00000000-0000-4000-8000-%012x", row_id),
        "amount": amount,
        "merchant": merchant,
        "cardnum": F.format_string("4%015d", F.pmod(F.xxhash64(row_id, F.lit(1)), F.lit(10**15))),
        "trancd": F.lit("POS"),
        "trandescription": F.concat(merchant, F.lit(" POS")),
        "transtat": F.lit("POSTED"),
        "trantype": F.lit("DEBIT"),
        "tranamt": amount,
        "source_topic": F.lit(topic),
        "source_partition": (row_id % partitions).cast("int"),
        "source_offset": row_id,
        "source_timestamp": F.current_timestamp(),
    }
    return spark.range(first_id, first_id + rows).select(
        *(known.get(column, F.lit(None).cast("string")).alias(column) for column in TRANSACTION_COLUMNS)
    )


def main() -> None:
    config, spark = start_job_session("the benchmark's ceiling: one connector write", "fraudshop-bench-ceiling")
    rows, accounts = int(os.environ[ROWS_VARIABLE]), int(os.environ[ACCOUNTS_VARIABLE])
    keyspace = config.cassandra.keyspace
    topic, partitions = config.kafka.topic, config.kafka.topic_partitions
    frame = ceiling_rows(spark, rows, accounts, topic, partitions).cache()
    started = time.monotonic()
    built = frame.count()
    build_seconds = time.monotonic() - started
    warmup = max(_WARMUP_MIN_ROWS, int(rows * WARMUP_SHARE))
    log.info("built and cached %d rows in %.1f s; warming up with a write of %d others", built, build_seconds, warmup)
    warmup_rows = ceiling_rows(spark, warmup, accounts, topic, partitions, first_id=rows)
    write_cassandra_table(warmup_rows, keyspace, "transaction")
    started = time.monotonic()
    write_cassandra_table(frame, keyspace, "transaction")
    write_seconds = time.monotonic() - started
    stored = read_cassandra_table(spark, keyspace, "transaction").count()
    log.info("wrote %d rows in %.1f s (%.0f rows/s); %d stored", built, write_seconds, built / write_seconds, stored)
    figures = {
        "rows": built,
        "warmup_rows": warmup,
        "build_seconds": build_seconds,
        "write_seconds": write_seconds,
        # The table holds the warm-up's rows too.
        "rows_stored": stored - warmup,
    }
    Path(os.environ[FIGURES_VARIABLE]).write_text(json.dumps(figures) + "\n")
    spark.stop()


if __name__ == "__main__":
    main()
