"""`fraudshop faults` on the test stack: kill -9 the running job three times, then SIGTERM it,
during one run of 50,000 transactions and 100 malformed records. After restarts from its
checkpoint, the scratch keyspace holds exactly the expected transactions and alerts, and none of
the job's secrets (Cassandra password, Kafka SASL password) showed in its log or command lines."""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

import pytest

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config
from fraudshop.lab.faults import DEFAULT_FAULTS
from tests.integration.conftest import TEST_STACK_SETTINGS

pytestmark = [pytest.mark.integration, pytest.mark.faults]
log = logging.getLogger(__name__)

RESULTS = Path(os.environ.get("FRAUDSHOP_RESULTS_DIR", "results")) / "job-crashes.json"


def test_nothing_lost_or_doubled_across_kill_9(stack_config: Config, tmp_path: Path) -> None:
    cassandra_password, sasl_password = secrets.token_hex(12), secrets.token_hex(12)
    settings = (
        *TEST_STACK_SETTINGS,
        "job.trigger_interval=1 second",
        # Secrets the job must never show. Cassandra's AllowAllAuthenticator ignores the
        # credentials; the SASL settings travel through Spark's Kafka source options to the Kafka
        # client, which uses them only over a SASL protocol (the test broker is PLAINTEXT).
        "cassandra.username=fraudshop-job",
        f"cassandra.password={cassandra_password}",
        "kafka.sasl_mechanism=PLAIN",
        "kafka.sasl_username=fraudshop-job",
        f"kafka.sasl_password={sasl_password}",
    )
    arguments = ["faults", "--transactions", "50000", "--accounts", "500", "--malformed", "100"]
    arguments += ["--results", str(RESULTS), "--work-dir", str(tmp_path)]
    exit_code = fraudshop_main([*arguments, *(f"--set={setting}" for setting in settings)])
    figures = json.loads(RESULTS.read_text())
    log.info("job crash figures: %s", figures)

    assert figures["faults"] == [str(fault) for fault in DEFAULT_FAULTS]  # kill-job 3 times, stop-job
    assert not figures["secret_in_job_log"]
    assert not figures["secret_on_command_line"]
    assert [exit["after"] for exit in figures["job_exits"]] == figures["faults"]
    # Told by exit codes: kill -9, then SIGTERM (which the JVM handles, exiting with 128 + 15).
    causes = [exit["cause"] for exit in figures["job_exits"]]
    assert causes[:3] == ["killed by SIGKILL"] * 3
    assert causes[3] in ("stopped by SIGTERM", "killed by SIGTERM")
    assert figures["transactions_produced"] == 50_000
    assert figures["transactions_lost"] == figures["transactions_extra"] == 0
    assert figures["alerts_expected"] > 0
    assert figures["alerts_lost"] == figures["alerts_extra"] == figures["alert_rows_duplicated"] == 0
    # Every expected rule hit stored once and notified under its one id (repeats after a fault are allowed).
    assert figures["rules"] > 0 and figures["hits_expected"] > 0
    assert figures["hits_lost"] == figures["hits_extra"] == figures["hit_rows_duplicated"] == 0
    assert figures["hits_not_notified"] == figures["notifications_without_hit"] == 0
    assert figures["rejects_stored"] == figures["malformed_injected"] == 100
    assert figures["passed"]
    assert exit_code == 0
