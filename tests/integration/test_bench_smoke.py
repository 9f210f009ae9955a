"""`fraudshop bench --smoke` on the real stack: both systems run, the results are complete and
well-formed, and both stored exactly the workload's transactions and alerts. No speed is
asserted: the figures depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudshop.cli import main
from fraudshop.config import Config
from tests.integration.conftest import TEST_STACK_SETTINGS

pytestmark = pytest.mark.integration

SYSTEM_KEYS = {
    "job",
    "job_log",
    "transactions_offered",
    "latency_s",
    "sustained_throughput_tps",
    "capacity_tps",
    "peak_rss_mb",
    "correctness",
    "phases",
}
PHASE_KEYS = {
    "name",
    "started_at",
    "offered_rate",
    "sent",
    "send_rate",
    "drain_seconds",
    "throughput_tps",
    "capacity_tps",
    "kept_up",
    "cpu_cores",
    "latency_s",
    "batches",
}
PROCESSES = {"kafka", "cassandra", "job_jvm", "python_driver", "bench_producer"}


def test_smoke_benchmark_runs_both_systems_and_checks_their_output(stack_config: Config, tmp_path: Path) -> None:
    overrides = [argument for setting in TEST_STACK_SETTINGS for argument in ("--set", setting)]
    assert main(["bench", "--smoke", "--output", str(tmp_path), *overrides]) == 0

    result = json.loads((tmp_path / "bench.json").read_text())
    assert {"machine", "plan", "job_settings", "systems", "comparison", "correctness_passed"} <= result.keys()
    assert result["correctness_passed"] is True
    assert set(result["systems"]) == {"fraudshop", "baseline"}
    assert set(result["comparison"]) == {"sustained_throughput_ratio", "capacity_ratio", "latency_p95_s"}
    for name, figures in result["systems"].items():
        assert figures.keys() >= SYSTEM_KEYS, name
        correctness = figures["correctness"]
        assert correctness["passed"] is True, (name, correctness)
        assert correctness["transactions_stored"] == figures["transactions_offered"] > 0
        assert correctness["alerts_stored"] == correctness["alerts_expected"] > 0
        assert {"p50", "p95", "p99"} <= figures["latency_s"].keys()
        assert figures["latency_s"]["count"] > 0
        assert figures["peak_rss_mb"]["job_jvm"] > 0
        assert [phase["name"] for phase in figures["phases"]][:2] == ["warm-up", "latency"]
        for phase in figures["phases"]:
            assert phase.keys() >= PHASE_KEYS, (name, phase["name"])
            assert set(phase["cpu_cores"]) == PROCESSES
            assert phase["sent"] > 0
        # The micro-batch breakdown names the job's own steps (detection job) or Spark's durations.
        queries = figures["phases"][1]["batches"]
        assert queries, name
        for query in queries.values():
            assert "triggerExecution" in query["duration_ms"]
    fraudshop_steps = next(iter(result["systems"]["fraudshop"]["phases"][1]["batches"].values()))["step_ms"]
    assert {"transactions", "alerts", "late_changes"} <= fraudshop_steps.keys()
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")
