"""kill -9 the running job three times, then SIGTERM it, during one run of 50,000 transactions;
after restarts from its checkpoint, bank.transaction and bank.cust_fraud hold exactly the
expected rows, and the job's credentials never showed in its log or its command lines."""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import signal
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from cassandra.cluster import Session
from kafka import KafkaProducer

from fraudshop.config import Config
from fraudshop.job_launcher import start_job, stop_job
from fraudshop.producer import (
    account_number,
    ensure_topic,
    kafka_client_settings,
    send_transactions,
    synthetic_transactions,
)
from fraudshop.profile_changes import ProfileChange, record_profile_change
from tests.integration.conftest import (
    batches_done,
    config_for_tests,
    more_batches_than,
    stored_rows,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]
log = logging.getLogger(__name__)

TRANSACTIONS = 50_000
ACCOUNTS = 500
MALFORMED = 100
# Three crashes, then a graceful stop: each interrupts a run that a restart must finish.
INTERRUPTIONS = (signal.SIGKILL, signal.SIGKILL, signal.SIGKILL, signal.SIGTERM)
CHANGED_ACCOUNTS = range(0, ACCOUNTS, 25)  # 20 accounts changed their profile an hour ago
SECRET = secrets.token_hex(12)
RESULTS = Path(os.environ.get("FRAUDSHOP_RESULTS_DIR", "results")) / "job-crashes.json"


def command_lines_of_group(group: int) -> str:
    """The command lines of every process in a process group (what `ps` shows anyone)."""
    lines = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == group:
                lines.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return "\n".join(lines)


def test_nothing_lost_or_doubled_across_kill_9(cassandra: Session, isolated_config: Config, tmp_path: Path) -> None:
    config = config_for_tests(
        f"cassandra.keyspace={isolated_config.cassandra.keyspace}",
        f"kafka.topic={isolated_config.kafka.topic}",
        f"job.checkpoint_dir={isolated_config.job.checkpoint_dir}",
        "job.trigger_interval=1 second",
        "kafka.max_offsets_per_trigger=2500",  # ~20 micro-batches, so every kill lands mid-stream
        # Credentials the job must never show: Cassandra's AllowAllAuthenticator ignores them.
        "cassandra.username=fraudshop-job",
        f"cassandra.password={SECRET}",
    )
    keyspace = config.cassandra.keyspace
    now = datetime.now(UTC)
    for index in CHANGED_ACCOUNTS:
        record_profile_change(
            cassandra,
            keyspace,
            ProfileChange(account_number(index), f"CUST-{index}", "email", now - timedelta(hours=1)),
        )

    ensure_topic(config.kafka)
    sent = list(itertools.islice(synthetic_transactions(ACCOUNTS, seed=42, clock=lambda: now), TRANSACTIONS))
    send_transactions(config.kafka, sent, rate=0)
    raw = KafkaProducer(**kafka_client_settings(config.kafka), acks="all")
    for i in range(MALFORMED):
        raw.send(config.kafka.topic, value=f"malformed record {i}".encode())
    raw.close()

    expected_transactions = {(t["account_no"], t["tranid"]) for t in sent}
    changed = {account_number(i) for i in CHANGED_ACCOUNTS}
    expected_alerts = {(f"CUST-{int(t['account_no'][3:])}", t["tranid"]) for t in sent if t["account_no"] in changed}

    recoveries = []
    job_log = tmp_path / "job.log"
    for kill in range(len(INTERRUPTIONS) + 1):
        started = time.monotonic()
        before = batches_done(job_log) if job_log.exists() else 0
        with open(job_log, "ab") as output:
            job = start_job(config, output)
        try:
            wait_until(partial(more_batches_than, job_log, before), 240, f"a micro-batch after start {kill}")
            recoveries.append(round(time.monotonic() - started, 1))
            assert SECRET not in command_lines_of_group(job.pid)
            if kill < len(INTERRUPTIONS):
                wait_until(partial(more_batches_than, job_log, before + 1), 120, "more micro-batches")
                os.killpg(job.pid, INTERRUPTIONS[kill])
                job.wait(timeout=120)
                continue
            wait_until(
                lambda: len(stored_rows(cassandra, keyspace, "transaction", "account_no, tranid")) == TRANSACTIONS,
                300,
                "every transaction",
                interval=5,
            )
            wait_until(
                lambda: (
                    len(stored_rows(cassandra, keyspace, "transaction_rejects", "reason, source_offset")) == MALFORMED
                ),
                60,
                "every rejected record",
            )
        finally:
            if job.poll() is None:
                stop_job(job)

    transactions = stored_rows(cassandra, keyspace, "transaction", "account_no, tranid")
    alerts = stored_rows(cassandra, keyspace, "cust_fraud", "customer_id, tranid")
    rows_in_alert_table = len(list(cassandra.execute(f"SELECT tranid FROM {keyspace}.cust_fraud")))
    figures = {
        "transactions_produced": TRANSACTIONS,
        "malformed_injected": MALFORMED,
        "kill_9_survived": INTERRUPTIONS.count(signal.SIGKILL),
        "sigterm_survived": INTERRUPTIONS.count(signal.SIGTERM),
        "transactions_lost": len(expected_transactions - transactions),
        "transactions_extra": len(transactions - expected_transactions),
        "alerts_expected": len(expected_alerts),
        "alerts_lost": len(expected_alerts - alerts),
        "alerts_extra": len(alerts - expected_alerts),
        "alert_rows_duplicated": rows_in_alert_table - len(alerts),
        "seconds_to_first_batch_after_each_start": recoveries,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    log.info("job crash figures: %s", figures)
    assert SECRET not in job_log.read_text(errors="replace")
    assert transactions == expected_transactions
    assert alerts == expected_alerts
    assert rows_in_alert_table == len(expected_alerts)
