"""The job's identity for its scan progress: the streaming query's id, which the checkpoint keeps,
so it survives restarts and a moved checkpoint (a checkpoint path would not)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from fraudshop.pipeline.stream import active_query_id


def ids_seen_by_the_first_batch(spark: SparkSession, checkpoint: Path) -> tuple[str, str]:
    """(the id the first batch resolves, the started query's id)."""
    seen: list[str] = []

    def first_batch(rows: DataFrame, batch_id: int) -> None:
        if not seen:
            seen.append(active_query_id(spark, "identity_test"))

    query = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 5)
        .load()
        .writeStream.queryName("identity_test")
        .foreachBatch(first_batch)
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="200 milliseconds")
        .start()
    )
    try:
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        query.stop()
    assert seen, "no batch ran"
    return seen[0], str(query.id)


def test_the_query_id_is_resolved_by_a_batch_and_survives_a_restart_from_a_moved_checkpoint(
    spark: SparkSession, tmp_path: Path
) -> None:
    first_seen, first_id = ids_seen_by_the_first_batch(spark, tmp_path / "checkpoint")
    assert first_seen == first_id
    shutil.move(tmp_path / "checkpoint", tmp_path / "moved")
    moved_seen, moved_id = ids_seen_by_the_first_batch(spark, tmp_path / "moved")
    assert moved_seen == moved_id == first_id
    other_seen, _ = ids_seen_by_the_first_batch(spark, tmp_path / "another")
    assert other_seen != first_id  # a new checkpoint is a new job


def test_no_running_query_of_that_name_is_an_error(spark: SparkSession) -> None:
    with pytest.raises(LookupError, match="no_such_query"):
        active_query_id(spark, "no_such_query")
