"""The profile changes a micro-batch's recent transactions can fall after, held on the driver and broadcast."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType, TimestampType

from fraudshop.model.tables import CHANGE_COLUMNS
from fraudshop.pipeline.ports import DetectionStore

CHANGE_SCHEMA = StructType(
    [StructField(name, TimestampType() if name == "last_updated" else StringType()) for name in CHANGE_COLUMNS]
)


@dataclass(eq=False)
class RecentChanges:
    """Reads cust_change's changes of the last ``window_seconds + lateness_seconds`` on every batch (one
    indexed query, a few rows: the changes of a day, not the years of history in the accounts' partitions)
    and hands them to the rule as a broadcast DataFrame, so that matching a batch needs no read per
    account and no shuffle of the changes. Transactions posted more than ``lateness_seconds`` before the
    batch (replays, late files) are not covered and are matched against their accounts' partitions."""

    store: DetectionStore
    window_seconds: int
    lateness_seconds: int
    # The last rows read and their DataFrame: most batches see the same changes, and building a
    # DataFrame from Python rows costs more than comparing them.
    _rows: list[tuple[Any, ...]] | None = field(default=None, init=False)
    _frame: DataFrame | None = field(default=None, init=False)

    def recent_from(self, now: datetime) -> datetime:
        """Transactions posted at or after this are covered by :meth:`covering` for a batch at ``now``."""
        return now - timedelta(seconds=self.lateness_seconds)

    def covering(self, spark: SparkSession, recent_from: datetime) -> DataFrame | None:
        """Every cust_change row a transaction posted at or after ``recent_from`` can fall after, read now,
        marked for broadcast; None when there is none."""
        rows = sorted(self.store.changes_since(recent_from - timedelta(seconds=self.window_seconds)))
        if rows != self._rows:
            self._rows = rows
            self._frame = F.broadcast(_local_frame(spark, rows)) if rows else None
        return self._frame


#: How :func:`_local_frame` writes times: what a Cassandra timestamp keeps, in UTC.
_JSON_TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"


def _local_frame(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    """``rows`` (in CHANGE_COLUMNS order) as a local relation built in the JVM. ``createDataFrame`` of
    Python rows starts Python workers whenever the frame is computed, i.e. for every batch's broadcast;
    the rows as one JSON literal, parsed by the JVM, start none."""

    def as_json(value: Any) -> Any:
        return value.isoformat(timespec="milliseconds") if isinstance(value, datetime) else value

    changes = [{name: as_json(value) for name, value in zip(CHANGE_COLUMNS, row, strict=True)} for row in rows]
    parsed = F.from_json(F.lit(json.dumps(changes)), ArrayType(CHANGE_SCHEMA), {"timestampFormat": _JSON_TIME_FORMAT})
    generated = spark.range(1, numPartitions=1).select(F.inline(parsed))
    # Collected once into a local relation: the JSON is parsed now, not again in every batch's optimisation.
    jvm_rows = generated._jdf.collectAsList()
    return DataFrame(spark._jsparkSession.createDataFrame(jvm_rows, generated._jdf.schema()), spark)
