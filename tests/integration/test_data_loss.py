"""Kafka lost records the job had not read yet (retention expired them while the job was down):
by default the job stops with a clear error and its exit code; with
kafka.fail_on_data_loss=false it skips them, Spark logs that it did, and the stream goes on.
The job's secrets stay out of the failure's output."""

from __future__ import annotations

import itertools
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cassandra.cluster import Session
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from fraudshop.config import Config
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.io.kafka.settings import kafka_client_settings
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.jobs.launcher import start_job, stop_job
from fraudshop.lab.waiting import wait_until
from fraudshop.lab.workload import synthetic_transactions
from fraudshop.pipeline.stream import KAFKA_DATA_LOSS_EXIT_CODE
from tests.integration.conftest import config_for_tests, stored_rows

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def committed_records(progress_file: Path) -> int:
    """Kafka records of the batches Spark reported as done (it reports after the commit)."""
    if not progress_file.exists():
        return 0
    batches = [json.loads(line)["fraudshop"] for line in progress_file.read_text().splitlines()]
    return sum(batch["kafka_records"] for batch in batches if batch)


def tranids(session: Session, keyspace: str) -> set[str]:
    return {row[0] for row in stored_rows(session, keyspace, "transaction", "tranid")}


def test_records_lost_to_retention_stop_the_job_unless_skipping_is_configured(
    cassandra: Session, isolated_config: Config, tmp_path: Path
) -> None:
    sasl_password = secrets.token_hex(12)
    settings = (
        f"cassandra.keyspace={isolated_config.cassandra.keyspace}",
        f"kafka.topic={isolated_config.kafka.topic}",
        f"kafka.notifications_topic={isolated_config.kafka.notifications_topic}",
        f"job.checkpoint_dir={isolated_config.job.checkpoint_dir}",
        "job.trigger_interval=1 second",
        "kafka.topic_partitions=1",
        f"job.progress_file={tmp_path / 'progress.jsonl'}",
        # Travels to the Kafka source's options (the test broker is PLAINTEXT, so it is not used).
        "kafka.sasl_mechanism=PLAIN",
        "kafka.sasl_username=fraudshop-job",
        f"kafka.sasl_password={sasl_password}",
    )
    config = config_for_tests(*settings)
    keyspace = config.cassandra.keyspace
    now = datetime.now(UTC)
    workload = itertools.islice(synthetic_transactions(10, seed=3, clock=lambda: now), 300)
    read, expired, after = (list(itertools.islice(workload, 100)) for _ in range(3))
    ensure_topic(config.kafka)
    job_log = tmp_path / "job.log"

    # 1. The job reads the first 100 records and commits them, then is stopped.
    send_transactions(config.kafka, read, rate=0)
    with open(job_log, "ab") as output:
        job = start_job(config, output)
    try:
        wait_until(lambda: committed_records(tmp_path / "progress.jsonl") == 100, 240, "the first records")
    finally:
        stop_job(job)
    assert tranids(cassandra, keyspace) == {t["tranid"] for t in read}

    # 2. While it is down, 100 more arrive and retention deletes them before it reads them.
    send_transactions(config.kafka, expired, rate=0)
    admin = KafkaAdminClient(**kafka_client_settings(config.kafka))
    try:
        admin.delete_records({TopicPartition(config.kafka.topic, 0): 200})
    finally:
        admin.close()
    send_transactions(config.kafka, after, rate=0)

    # 3. Restarted with the default, it refuses to skip them: a clear error and exit code 65.
    with open(job_log, "ab") as output:
        job = start_job(config, output)
    try:
        assert job.wait(timeout=240) == KAFKA_DATA_LOSS_EXIT_CODE
    finally:
        stop_job(job)
    text = job_log.read_text(errors="replace")
    assert "Kafka no longer holds records this job had not read yet" in text
    assert "kafka.fail_on_data_loss=false" in text
    assert tranids(cassandra, keyspace) == {t["tranid"] for t in read}

    # 4. Told to skip lost records, it goes on with the records still in Kafka.
    with open(job_log, "ab") as output:
        job = start_job(config_for_tests(*settings, "kafka.fail_on_data_loss=false"), output)
    try:
        expected = {t["tranid"] for t in read + after}
        wait_until(lambda: tranids(cassandra, keyspace) == expected, 240, "the records after the gap")
    finally:
        stop_job(job)
    text = job_log.read_text(errors="replace")
    assert "data may have been lost" in text.lower() or "data may have been missed" in text.lower()
    assert sasl_password not in text
