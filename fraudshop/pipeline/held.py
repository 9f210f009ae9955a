"""A batch's intermediate DataFrame, computed once for all the actions that read it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame


@contextmanager
def computed_once(frame: DataFrame) -> Iterator[DataFrame]:
    """``frame`` as a lazy local checkpoint: the first action computes it into the executors' block
    stores, later (or concurrent) actions read those blocks; released on exit. Per micro-batch this
    is cheaper than ``persist()``, profiled at about 30 against 180 ms a batch: no cache-manager
    bookkeeping on the way in and out, and the plans built on it start from the checkpoint instead
    of analysing and optimising the whole parse again. On a cluster, an executor lost mid-batch takes its
    blocks with it: the batch fails and is retried as a whole (every write is idempotent)."""
    held = frame.localCheckpoint(eager=False)
    try:
        yield held
    finally:
        # The checkpoint's RDD is the leaf of its plan (a LogicalRDD): freed now, not whenever the
        # JVM's garbage collector lets Spark's cleaner find it.
        held._jdf.queryExecution().logical().rdd().unpersist(False)


def collected(frame: DataFrame) -> tuple[DataFrame, int]:
    """``frame`` computed now into a local relation, and its row count: for a few rows that several plans
    of a batch read. Collected in the JVM (no Python rows, so no Python workers when it is read)."""
    spark = frame.sparkSession
    rows = frame._jdf.collectAsList()
    return DataFrame(spark._jsparkSession.createDataFrame(rows, frame._jdf.schema()), spark), int(rows.size())
