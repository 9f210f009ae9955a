"""The detection stream's identity and how its failures are explained to the operator."""

from __future__ import annotations

import re

from pyspark.sql import SparkSession

from fraudshop.pipeline.resilience import is_kafka_data_loss

QUERY_NAME = "fraudshop_detect_fraud"
#: Exit code of a job stopped because Kafka lost records it had not read (EX_DATAERR).
KAFKA_DATA_LOSS_EXIT_CODE = 65


def active_query_id(spark: SparkSession, name: str = QUERY_NAME) -> str:
    """Spark keeps the query id in the checkpoint, so it names the job for as long as the checkpoint lives,
    wherever it is moved. The query is registered before its first batch runs, so a batch can ask for it."""
    for query in spark.streams.active:
        if query.name == name:
            return str(query.id)
    raise LookupError(f"no active streaming query named {name!r}")


def explain_stream_failure(error: BaseException) -> tuple[str, int]:
    """What to tell the operator, and the job's exit code. Only the first line of Spark's error is kept:
    the rest restates the query plan."""
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
