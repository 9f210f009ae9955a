"""spark-submit entry point of the detection stream; ``fraudshop job --print`` shows its command line."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from fraudshop.config import Config
from fraudshop.io.cassandra.schema import older_schema
from fraudshop.io.cassandra.session import cassandra_session
from fraudshop.io.cassandra.store import CassandraStore
from fraudshop.io.checkpoints import move_aside_two_source_checkpoint
from fraudshop.io.kafka.notifications import KafkaNotifications
from fraudshop.io.kafka.source import transaction_records
from fraudshop.jobs.session import start_job_session
from fraudshop.pipeline.late_changes import LateChangeScanner
from fraudshop.pipeline.micro_batch import IdleScanTimer, MicroBatchProcessor
from fraudshop.pipeline.progress import ProgressReporter
from fraudshop.pipeline.recent_changes import RecentChanges
from fraudshop.pipeline.resilience import ResilientBatch, exit_stuck_job
from fraudshop.pipeline.rules import RuleStep
from fraudshop.pipeline.similarity import SimilarityStep
from fraudshop.pipeline.stream import QUERY_NAME, active_query_id, explain_stream_failure

log = logging.getLogger("fraudshop.job")

#: The exit code when the keyspace lacks a table or column of this version (sysexits' EX_CONFIG).
SCHEMA_LACKING_EXIT_CODE = 78


def start_detection_query(spark: SparkSession, config: Config) -> StreamingQuery:
    """Start the one streaming query of the job; checkpointing makes restarts resume where it stopped."""
    store = CassandraStore(spark, config.cassandra)
    progress = ProgressReporter(Path(config.job.progress_file).expanduser() if config.job.progress_file else None)
    spark.streams.addListener(progress)
    late_changes = LateChangeScanner(
        store,
        window_seconds=config.job.change_window_seconds,
        margin=timedelta(seconds=config.job.change_scan_margin_seconds),
        changes_per_batch=config.job.late_changes_per_batch,
        # The query's id, kept in the checkpoint: the scan's progress follows a moved checkpoint.
        job_id=lambda: active_query_id(spark, QUERY_NAME),
    )
    recent_changes = RecentChanges(
        store,
        window_seconds=config.job.change_window_seconds,
        lateness_seconds=config.job.recent_transaction_seconds,
    )
    notifications = KafkaNotifications(config.kafka)
    processor = MicroBatchProcessor(
        store,
        late_changes,
        recent_changes,
        window_seconds=config.job.change_window_seconds,
        max_record_bytes=config.job.max_record_bytes,
        max_future_skew_seconds=config.job.max_future_skew_seconds,
        rules=RuleStep(store, notifications),
        similarity=(
            SimilarityStep(
                store,
                notifications,
                config.similarity.threshold,
                config.similarity.nearest_cases,
                feedback_delay_days=config.risk.feedback_delay_days,
            )
            if config.similarity.enabled
            else None
        ),
        on_batch_done=progress.batch_done,
    )
    resilient = ResilientBatch(
        processor,
        attempts=config.job.batch_attempts,
        backoff_seconds=config.job.batch_retry_backoff_seconds,
        timeout_seconds=config.job.batch_timeout_seconds,
    )
    starting_offsets = move_aside_two_source_checkpoint(spark, str(config.job.checkpoint_dir))
    query = (
        transaction_records(spark, config.kafka, starting_offsets)
        .writeStream.queryName(QUERY_NAME)
        .foreachBatch(resilient)
        .option("checkpointLocation", str(config.job.checkpoint_dir))
        .trigger(processingTime=config.job.trigger_interval)
        .start()
    )
    IdleScanTimer(
        processor,
        spark,
        interval_seconds=config.job.idle_scan_interval_seconds,
        timeout_seconds=config.job.batch_timeout_seconds,
        on_stuck=exit_stuck_job,
    ).start()
    return query


def refuse_an_older_schema(config: Config) -> None:
    """Exit before the stream starts if the keyspace lacks a table or column of this version: an upgrade
    not yet applied would otherwise fail its first batch that writes there, possibly much later."""
    with cassandra_session(config.cassandra) as session:
        problem = older_schema(session, config.cassandra.keyspace, "the job")
    if problem:
        log.error("%s", problem)
        sys.exit(SCHEMA_LACKING_EXIT_CODE)


def main() -> None:
    config, spark = start_job_session("fraudshop detection stream", app_name="fraudshop-detect-fraud")
    refuse_an_older_schema(config)
    try:
        start_detection_query(spark, config).awaitTermination()
    except StreamingQueryException as error:
        message, exit_code = explain_stream_failure(error)
        log.error(message)
        sys.exit(exit_code)


if __name__ == "__main__":
    main()
