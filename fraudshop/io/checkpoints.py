"""Checkpoints of the detection stream written by an earlier form of it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def move_aside_two_source_checkpoint(spark: SparkSession, checkpoint_dir: str) -> str | None:
    """Until 2026-11-28 the stream read two sources, Kafka and a rate source whose ticks ran a batch on
    every trigger; Spark refuses to resume such a checkpoint with one source. If ``checkpoint_dir`` is one,
    rename it (beside itself, on whatever file system holds it) and return the Kafka offsets of its last
    committed batch, for the new checkpoint to start from: nothing is skipped, and a batch that was not
    committed runs again (every write is idempotent). None if it committed none, or is not one."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    root = hadoop_path(checkpoint_dir)
    files = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def batch_ids(folder: str) -> list[int]:
        path = hadoop_path(root, folder)
        if not files.exists(path):
            return []
        names = [status.getPath().getName() for status in files.listStatus(path)]
        return [int(name) for name in names if name.isdigit()]

    def sources_of_batch(batch: int) -> list[str]:
        # An offsets file: a version line, the batch's metadata, then one line per source, in the query's order.
        # Read on the driver: a Spark job here would add to every start of the job.
        stream = files.open(hadoop_path(root, f"offsets/{batch}"))
        try:
            text = str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()
        return text.splitlines()[2:]

    planned, committed = batch_ids("offsets"), batch_ids("commits")
    if not planned or len(sources_of_batch(max(planned))) != 2:
        return None
    # None when no batch was committed: the new checkpoint starts where the config says, as the old one would.
    kafka_offsets = sources_of_batch(max(committed))[0] if committed else None
    moved = hadoop_path(f"{checkpoint_dir.rstrip('/')}.two-sources-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    if not files.rename(root, moved):
        raise RuntimeError(f"could not move the two-source checkpoint {checkpoint_dir} aside to {moved}")
    log.warning(
        "checkpoint %s was written by an earlier fraudshop (Kafka and a tick source), which Spark cannot resume: "
        "moved to %s; the new checkpoint starts from its last committed Kafka offsets %s",
        checkpoint_dir,
        moved.toString(),
        kafka_offsets,
    )
    return kafka_offsets
