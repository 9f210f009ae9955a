"""The job's progress: each batch's counts (rejects included) and step timings, joined to Spark's
own streaming progress in the progress file."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudshop.model.changes import ProfileChange
from fraudshop.pipeline.metrics import BatchMetrics
from fraudshop.pipeline.micro_batch import BATCH_TIMESTAMP
from fraudshop.pipeline.progress import ProgressReporter
from fraudshop.pipeline.resilience import ResilientBatch
from tests.unit.kafka_rows import kafka_records
from tests.unit.memory_store import InMemoryStore, detection_processor
from tests.unit.test_arrival_order import BASE, Txn, micro_batch
from tests.unit.test_batch_retries import FlakyStore


def batch_with_one_malformed_record(spark: SparkSession) -> DataFrame:
    batch_at = datetime.now(UTC)
    valid = micro_batch(spark, [Txn("ACC-1", BASE, "T1"), Txn("ACC-2", BASE, "T2")], 10, batch_at)
    malformed = kafka_records(spark, [b"not a transaction"]).drop("key").withColumn(BATCH_TIMESTAMP, F.lit(batch_at))
    return valid.unionByName(malformed)


def processor(store: InMemoryStore, reported: list[BatchMetrics], attempts: int = 1) -> ResilientBatch:
    body = detection_processor(store, on_batch_done=reported.append)
    return ResilientBatch(body, attempts, backoff_seconds=0.01, timeout_seconds=None)


def test_a_batch_reports_its_records_transactions_rejects_alerts_and_step_times(spark: SparkSession) -> None:
    store = InMemoryStore(spark)
    # Recorded before the late-change scan's reach: only the batch's own join flags T1.
    recorded_at = datetime.now(UTC) - timedelta(days=2)
    store.record_change(ProfileChange("ACC-1", "CUST-1", "email", BASE - timedelta(hours=1)), recorded_at)
    reported: list[BatchMetrics] = []
    processor(store, reported)(batch_with_one_malformed_record(spark), 7)
    [metrics] = reported
    assert (metrics.batch_id, metrics.kafka_records, metrics.transactions, metrics.rejected) == (7, 3, 2, 1)
    assert (metrics.alert_rows, metrics.late_changes, metrics.late_alert_rows) == (1, 0, 0)
    # Posted days before the batch: matched against the account's partition, not the held changes.
    assert {"transactions", "rejects", "alerts", "older_transactions", "late_changes"} == set(metrics.step_ms)
    assert all(ms >= 0 for ms in metrics.step_ms.values())


def test_a_retried_batch_reports_its_successful_attempt_once(spark: SparkSession) -> None:
    store = FlakyStore(spark, failures=2)
    reported: list[BatchMetrics] = []
    processor(store, reported, attempts=3)(batch_with_one_malformed_record(spark), 0)
    assert [(m.batch_id, m.transactions, m.rejected) for m in reported] == [(0, 2, 1)]


def test_the_progress_file_joins_spark_progress_to_each_batch_metrics(spark: SparkSession, tmp_path: Path) -> None:
    progress_file = tmp_path / "progress.jsonl"
    reporter = ProgressReporter(progress_file)
    spark.streams.addListener(reporter)

    def count_rows(rows: DataFrame, batch_id: int) -> None:
        metrics = BatchMetrics(batch_id)
        with metrics.step("read_kafka"):
            metrics.kafka_records = rows.count()
        metrics.transactions = metrics.kafka_records
        reporter.batch_done(metrics)

    query = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 20)
        .load()
        .writeStream.foreachBatch(count_rows)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(processingTime="500 milliseconds")
        .start()
    )
    try:
        deadline = time.monotonic() + 60
        while len(lines := _lines(progress_file)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        query.stop()
        spark.streams.removeListener(reporter)

    assert len(lines) >= 3
    assert [line["batch_id"] for line in lines[:3]] == [0, 1, 2]
    for line in lines[:3]:
        assert line["fraudshop"]["kafka_records"] == line["num_input_rows"]
        assert "addBatch" in line["duration_ms"]
        assert "read_kafka" in line["fraudshop"]["step_ms"]
    assert reporter.totals["kafka_records"] >= sum(line["num_input_rows"] for line in lines[:3])


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
