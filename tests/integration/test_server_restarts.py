"""Cassandra or Kafka restarts while the job streams: nothing lost, nothing doubled. Kafka: the
job rides through. Cassandra: failed batches are retried; a call stuck in the Java driver makes
the stuck-batch watchdog stop the job with a clear error, and the restarted job finishes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cassandra.cluster import Session

from fraudshop.config import Config
from fraudshop.lab.faults import DrillPlan, Fault, restart_local_server, run_drill
from fraudshop.pipeline.resilience import STUCK_BATCH_EXIT_CODE
from tests.integration.conftest import config_for_tests

pytestmark = [pytest.mark.integration, pytest.mark.faults]

RESULTS = Path(os.environ.get("FRAUDSHOP_RESULTS_DIR", "results")) / "server-restarts.json"


@pytest.mark.parametrize("fault", [Fault.RESTART_CASSANDRA, Fault.RESTART_KAFKA])
def test_nothing_lost_or_doubled_across_a_server_restart(
    fault: Fault, isolated_config: Config, cassandra: Session, tmp_path: Path
) -> None:
    config = config_for_tests(
        f"cassandra.keyspace={isolated_config.cassandra.keyspace}",
        f"kafka.topic={isolated_config.kafka.topic}",
        f"kafka.notifications_topic={isolated_config.kafka.notifications_topic}",
        f"job.checkpoint_dir={isolated_config.job.checkpoint_dir}",
        "job.trigger_interval=1 second",
        "kafka.max_offsets_per_trigger=400",  # many small batches: the restart lands mid-stream
        "job.batch_timeout_seconds=60",
        "job.batch_attempts=5",  # 30 s of backoff in all: the retries fit the watchdog's 60 s
        f"job.progress_file={tmp_path / 'progress.jsonl'}",  # the drill follows the job's batches there
    )
    plan = DrillPlan(faults=(fault,), transactions=5_000, accounts=50, malformed=10, changed_every=7, seed=11)
    figures = run_drill(config, plan, cassandra, tmp_path, restart_local_server(config))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[fault.server] = figures
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    for exit in figures["job_exits"]:
        # The only way the job may stop on its own: the watchdog, with its exit code.
        assert exit["exit_code"] == STUCK_BATCH_EXIT_CODE, exit
        assert exit["cause"] == "stuck batch (watchdog)"
    if fault is Fault.RESTART_KAFKA:
        assert figures["job_exits"] == []  # the Kafka source waits for the broker
    assert figures["transactions_lost"] == figures["transactions_extra"] == 0
    assert figures["alerts_expected"] > 0
    assert figures["alerts_lost"] == figures["alerts_extra"] == figures["alert_rows_duplicated"] == 0
    # Every expected rule hit stored once and notified under its one id (repeats after a fault are allowed).
    assert figures["rules"] > 0 and figures["hits_expected"] > 0
    assert figures["hits_lost"] == figures["hits_extra"] == figures["hit_rows_duplicated"] == 0
    assert figures["hits_not_notified"] == figures["notifications_without_hit"] == 0
    assert figures["passed"]
