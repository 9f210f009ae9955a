"""The job's progress: a log line per micro-batch with its counts and running totals and, when
``job.progress_file`` is set, a JSON line per micro-batch joining Spark's progress to our
:class:`BatchMetrics` (what `fraudshop bench` reads; null for a query that reports none)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from pyspark.sql.streaming.listener import StreamingQueryListener

from fraudshop.pipeline.metrics import BatchMetrics

log = logging.getLogger(__name__)

_TOTALS = ("kafka_records", "transactions", "rejected", "alert_rows", "rule_hits", "similarity_hits")


class ProgressReporter(StreamingQueryListener):
    """Gets each batch's :class:`BatchMetrics` from the ``foreachBatch`` body, then Spark's progress event
    for the same batch, which Spark sends after the batch committed."""

    def __init__(self, progress_file: Path | None) -> None:
        self.progress_file = progress_file
        self.totals = dict.fromkeys(_TOTALS, 0)
        self._pending: dict[int, BatchMetrics] = {}
        self._lock = threading.Lock()  # batches and Spark's listener bus run on different threads

    def batch_done(self, metrics: BatchMetrics) -> None:
        with self._lock:
            self._pending[metrics.batch_id] = metrics
            for name in _TOTALS:
                self.totals[name] += getattr(metrics, name)
            totals = dict(self.totals)
        if metrics.kafka_records:
            log.info(
                "batch %d: %d records, %d transactions, %d rejected; since start: %d records, %d transactions, "
                "%d rejected, %d alert rows, %d rule hits, %d similarity hits",
                metrics.batch_id,
                metrics.kafka_records,
                metrics.transactions,
                metrics.rejected,
                *(totals[name] for name in _TOTALS),
            )

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        with self._lock:
            metrics = self._pending.pop(progress.batchId, None)
            # Batches Spark reported without our metrics (none, or a failed attempt) leave nothing behind.
            self._pending = {batch: m for batch, m in self._pending.items() if batch > progress.batchId}
        if self.progress_file is None:
            return
        line = {
            "query": progress.name,
            "batch_id": progress.batchId,
            "timestamp": progress.timestamp,
            "num_input_rows": progress.numInputRows,
            "duration_ms": dict(progress.durationMs),
            # Where each source stood after the batch (Kafka: {topic: {partition: offset}}): unlike
            # the row counts, it tells how far the query got even if an earlier line is missing.
            "end_offsets": [json.loads(source.endOffset) for source in progress.sources if source.endOffset],
            "fraudshop": metrics.as_dict() if metrics else None,
        }
        with self.progress_file.open("a") as handle:
            handle.write(json.dumps(line) + "\n")

    def onQueryStarted(self, event: Any) -> None: ...
    def onQueryTerminated(self, event: Any) -> None: ...
