"""The fault drill's reading of the job: batches from its progress file (never its log's wording),
why it exited from its exit code, and what `ps` shows of its processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from fraudshop.lab.faults import DrillPlan, batches_with_records, command_lines_of_group, drill_rules, exit_cause
from fraudshop.lab.waiting import wait_until
from fraudshop.lab.workload import account_number, merchant_catalogue
from fraudshop.model.rules import RULE_KINDS, RuleScope, scope_of
from fraudshop.pipeline.resilience import STUCK_BATCH_EXIT_CODE
from fraudshop.pipeline.stream import KAFKA_DATA_LOSS_EXIT_CODE


def progress_line(batch_id: int, records: int | None) -> str:
    return json.dumps(
        {
            "query": "fraudshop_detect_fraud",
            "batch_id": batch_id,
            "timestamp": "2026-11-23T10:00:00.000Z",
            "num_input_rows": (records or 0) + 1,
            "duration_ms": {"triggerExecution": 900},
            "fraudshop": None if records is None else {"kafka_records": records, "step_ms": {}},
        }
    )


def test_batches_are_counted_from_the_progress_file_not_the_log(tmp_path: Path) -> None:
    progress = tmp_path / "progress.jsonl"
    assert batches_with_records(progress) == 0  # the job has not reported yet
    lines = [progress_line(0, 400), progress_line(1, 0), progress_line(2, None), progress_line(3, 12)]
    # The last line is still being written: it counts once it is whole.
    progress.write_text("\n".join(lines) + "\n" + progress_line(4, 5)[:30])
    assert batches_with_records(progress) == 2
    (tmp_path / "job.log").write_text("batch 7: 100 records, ...\n" * 5)  # the log's words count for nothing
    assert batches_with_records(progress) == 2


def test_exits_are_explained_by_their_codes() -> None:
    assert exit_cause(KAFKA_DATA_LOSS_EXIT_CODE) == "kafka data loss"
    assert exit_cause(STUCK_BATCH_EXIT_CODE) == "stuck batch (watchdog)"
    assert exit_cause(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_cause(128 + signal.SIGTERM) == "stopped by SIGTERM"  # the JVM handled it
    assert exit_cause(0) == "stopped"
    assert exit_cause(1) == "the stream failed"


def test_command_lines_of_a_process_group() -> None:
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 301 & sleep 302; wait"], start_new_session=True, stdin=subprocess.DEVNULL
    )
    try:
        wait_until(
            lambda: all(line in command_lines_of_group(leader.pid) for line in ("sh -c", "sleep 301", "sleep 302")),
            10,
            "the group's processes",
            interval=0.1,
        )
        assert "pytest" not in command_lines_of_group(leader.pid)  # only the group's processes
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


def test_the_drill_sets_every_kind_of_rule_over_its_own_accounts_and_merchants() -> None:
    plan = DrillPlan(faults=(), accounts=50, rules=24, seed=3)
    definitions = drill_rules(plan)
    assert definitions == drill_rules(plan)  # seeded: the same rules for the same plan
    assert len(definitions) == 24
    assert {definition.kind for definition in definitions} == set(RULE_KINDS)
    accounts = {account_number(i) for i in range(plan.accounts)}
    catalogue = {merchant.merchant_id for merchant in merchant_catalogue()}
    for definition in definitions:
        scope, scope_id = scope_of(definition)
        assert scope_id in (catalogue if scope is RuleScope.MERCHANT else accounts)


def test_the_cluster_drill_kills_a_node_of_each_engine_then_the_driver() -> None:
    from fraudshop.lab.cluster_drill import CLUSTER_FAULTS
    from fraudshop.lab.faults import Fault

    assert CLUSTER_FAULTS == (
        Fault.KILL_CASSANDRA_NODE,
        Fault.KILL_KAFKA_LEADER,
        Fault.KILL_SPARK_WORKER,
        Fault.KILL_JOB,
    )
    assert [fault.on_a_node for fault in CLUSTER_FAULTS] == [True, True, True, False]
    assert [fault for fault in Fault if fault.mid_batch] == [Fault.KILL_SPARK_WORKER]
    assert {fault.server for fault in CLUSTER_FAULTS} == {None}


def test_a_node_fault_without_the_lab_cluster_is_refused_before_anything_runs(tmp_path: Path) -> None:
    import pytest

    from fraudshop.config import load_config
    from fraudshop.lab.faults import Fault, run_drill

    plan = DrillPlan(faults=(Fault.KILL_KAFKA_LEADER,))
    session: Any = None  # never reached
    with pytest.raises(ValueError, match="needs the lab cluster: fraudshop faults --cluster"):
        run_drill(load_config(environ={}), plan, session, tmp_path, restart_server=print)


def test_the_streams_rate_counts_records_over_its_batches_and_over_their_own_time(tmp_path: Path) -> None:
    from fraudshop.lab.faults import stream_rate

    def line(batch_id: int, at: str, records: int, milliseconds: int) -> str:
        return json.dumps(
            {
                "query": "fraudshop_detect_fraud",
                "batch_id": batch_id,
                "timestamp": at,
                "duration_ms": {"triggerExecution": milliseconds},
                "fraudshop": {"kafka_records": records, "step_ms": {}},
            }
        )

    progress = tmp_path / "progress.jsonl"
    assert stream_rate(progress) == {}
    # 3,000 records: the first batch starts at :00, the last ends at :19 (10 s of batch time, an idle batch left out).
    progress.write_text(
        "\n".join(
            [
                line(0, "2026-11-23T10:00:00.000Z", 1000, 4000),
                line(1, "2026-11-23T10:00:05.000Z", 0, 100),
                line(2, "2026-11-23T10:00:10.000Z", 1500, 3000),
                line(3, "2026-11-23T10:00:16.000Z", 500, 3000),
            ]
        )
        + "\n"
    )
    assert stream_rate(progress) == {
        "batches": 3,
        "records": 3000,
        "first_to_last_batch_seconds": 19.0,
        "records_per_second": round(3000 / 19, 1),
        "records_per_second_of_batch_time": 300.0,
    }
