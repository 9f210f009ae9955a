"""Cassandra or Kafka restarts while the job streams: nothing lost, nothing doubled."""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cassandra.cluster import NoHostAvailable, Session

from fraudshop.config import Config
from fraudshop.job_launcher import start_job, stop_job
from fraudshop.micro_batch import STUCK_BATCH_EXIT_CODE
from fraudshop.producer import account_number, ensure_topic, send_transactions, synthetic_transactions
from fraudshop.profile_changes import ProfileChange, record_profile_change
from fraudshop.stack.cassandra import cassandra_server
from fraudshop.stack.kafka import kafka_server
from tests.integration.conftest import (
    batches_done,
    config_for_tests,
    stored_rows,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

TRANSACTIONS = 8_000
ACCOUNTS = 50
RESULTS = Path(os.environ.get("FRAUDSHOP_RESULTS_DIR", "results")) / "server-restarts.json"
SERVERS = {"cassandra": cassandra_server, "kafka": kafka_server}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_the_job_rides_through_a_server_restart(
    server: str, isolated_config: Config, cassandra: Session, tmp_path: Path
) -> None:
    config = config_for_tests(
        f"cassandra.keyspace={isolated_config.cassandra.keyspace}",
        f"kafka.topic={isolated_config.kafka.topic}",
        f"job.checkpoint_dir={isolated_config.job.checkpoint_dir}",
        "job.trigger_interval=1 second",
        "kafka.max_offsets_per_trigger=500",  # many small batches: the restart lands mid-stream
        "job.batch_timeout_seconds=45",
    )
    keyspace = config.cassandra.keyspace
    now = datetime.now(UTC)
    record_profile_change(
        cassandra, keyspace, ProfileChange(account_number(7), "CUST-7", "phone", now - timedelta(hours=2))
    )
    sent = list(itertools.islice(synthetic_transactions(ACCOUNTS, seed=11, clock=lambda: now), TRANSACTIONS))
    half = TRANSACTIONS // 2
    ensure_topic(config.kafka)
    send_transactions(config.kafka, sent[:half], rate=0)

    job_log = tmp_path / "job.log"
    with open(job_log, "ab") as output:
        job = start_job(config, output)
    restarts = 0
    try:
        wait_until(lambda: batches_done(job_log) >= 2, 240, "the job's first micro-batches")
        process = SERVERS[server](config)
        stopped_at = time.monotonic()
        process.stop()
        process.start(config.stack.start_timeout_seconds)
        down_seconds = time.monotonic() - stopped_at
        # Produced once the broker is back: a producer's own retries are not what this test is about.
        send_transactions(config.kafka, sent[half:], rate=0)

        def all_stored_or_job_stopped() -> bool:
            return (
                job.poll() is not None or len(stored_rows(cassandra, keyspace, "transaction", "tranid")) == TRANSACTIONS
            )

        # This test's own session reconnects after the restart: until then, its reads fail.
        wait_until(all_stored_or_job_stopped, 240, "every transaction", interval=2, unavailable=(NoHostAvailable,))
        if job.poll() is not None:
            # The job chose to stop: it must say why, and a restart must finish the work.
            assert job.returncode == STUCK_BATCH_EXIT_CODE, job_log.read_text()[-3000:]
            assert "has not finished after 45 s" in job_log.read_text(errors="replace")
            restarts += 1
            with open(job_log, "ab") as output:
                job = start_job(config, output)
            wait_until(all_stored_or_job_stopped, 240, "every transaction after the restart", interval=2)
        caught_up_seconds = time.monotonic() - stopped_at - down_seconds
        expected_alerts = {("CUST-7", t["tranid"]) for t in sent if t["account_no"] == account_number(7)}
        wait_until(
            lambda: stored_rows(cassandra, keyspace, "cust_fraud", "customer_id, tranid") == expected_alerts,
            60,
            "every alert",
        )
        assert job.poll() is None, f"the job stopped:\n{job_log.read_text()[-3000:]}"
    finally:
        stop_job(job)

    assert stored_rows(cassandra, keyspace, "transaction", "account_no, tranid") == {
        (t["account_no"], t["tranid"]) for t in sent
    }
    assert len(list(cassandra.execute(f"SELECT tranid FROM {keyspace}.cust_fraud"))) == len(expected_alerts)
    retries = len(re.findall(r"failed \(attempt", job_log.read_text(errors="replace")))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[server] = {
        "transactions": TRANSACTIONS,
        "lost": 0,
        "duplicated": 0,
        "server_down_and_restart_seconds": round(down_seconds, 1),
        "seconds_from_server_ready_to_all_rows_stored": round(caught_up_seconds, 1),
        "batch_retries_logged": retries,
        "job_restarts_needed": restarts,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
