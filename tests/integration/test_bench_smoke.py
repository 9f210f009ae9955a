"""`fraudshop bench --smoke` on the real stack: every system runs (the ceiling, fraudshop, the
baseline), the results hold every headline key and are well-formed, and both streaming systems
stored exactly the workload's transactions and alerts, phases and backlog together. No speed is
asserted: the figures depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudshop.cli import main
from fraudshop.config import Config
from fraudshop.lab.bench.figures import BACKLOG, HEADLINE_KEYS, LATENCY, RECOVERY, SMALL_BATCHES, TARGETS, WARM_UP
from tests.integration.conftest import TEST_STACK_SETTINGS

pytestmark = pytest.mark.integration

SYSTEM_KEYS = {
    *HEADLINE_KEYS,
    "job",
    "job_log",
    "transactions_offered",
    "capacity",
    "fixed_cost",
    "killed_at",
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
    "cpu_cores",
    "latency_s",
    "batches",
}
PROCESSES = {"kafka", "cassandra", "job_jvm", "python_driver", "bench_producer"}


def test_smoke_benchmark_runs_every_system_and_checks_their_output(stack_config: Config, tmp_path: Path) -> None:
    overrides = [argument for setting in TEST_STACK_SETTINGS for argument in ("--set", setting)]
    benchmarks = tmp_path / "benchmarks"
    assert main(["bench", "--smoke", "--output", str(tmp_path), "--write-benchmarks", str(benchmarks), *overrides]) == 0

    result = json.loads((tmp_path / "bench.json").read_text())
    assert {*HEADLINE_KEYS, "baseline", "targets", "machine", "commit", "definitions", "systems"} <= result.keys()
    assert result["correctness_passed"] is True
    assert set(result["systems"]) == {"ceiling", "fraudshop", "baseline"}
    assert set(result["targets"]) == {target.name for target in TARGETS}
    assert all(isinstance(target["met"], bool) for target in result["targets"].values())
    assert {"nproc", "memory_gib"} <= result["machine"].keys()
    assert result["ceiling_rows_per_s"] > 0

    ceiling = result["systems"]["ceiling"]
    assert ceiling["correctness"]["passed"] is True
    assert ceiling["rows"] == result["plan"]["backlog"]
    for name in ("fraudshop", "baseline"):
        figures = result["systems"][name]
        assert figures.keys() >= SYSTEM_KEYS, name
        headline = figures if name == "fraudshop" else result["baseline"]
        assert {key: headline[key] for key in HEADLINE_KEYS} == {key: figures[key] for key in HEADLINE_KEYS}, name
        correctness = figures["correctness"]
        assert correctness["passed"] is True, (name, correctness)
        assert correctness["transactions_stored"] == figures["transactions_offered"] > result["plan"]["backlog"]
        assert correctness["alerts_stored"] == correctness["alerts_expected"] > 0
        # Every figure was measured (a None would mean a phase found no batches to measure).
        assert figures["capacity_txn_per_s"] > 0 and figures["capacity_ratio"] > 0, name
        assert figures["batch_fixed_cost_s"] > 0 and figures["recovery_s"] > 0, name
        assert set(figures[LATENCY]) == {"2000", "200"}, name
        for latency in figures[LATENCY].values():
            assert latency["count"] > 0 and {"p50", "p95", "p99"} <= latency.keys(), name
        assert figures["peak_rss_mb"]["job_jvm"] > 0
        phases = [phase["name"] for phase in figures["phases"]]
        assert phases == [WARM_UP, "latency 2000/s", "latency 200/s", SMALL_BATCHES, RECOVERY, BACKLOG], name
        for phase in figures["phases"]:
            assert phase.keys() >= PHASE_KEYS, (name, phase["name"])
            assert set(phase["cpu_cores"]) == PROCESSES
            assert phase["sent"] > 0
        # The micro-batch breakdown names the job's own steps (detection job) or Spark's durations.
        for query in figures["phases"][1]["batches"].values():
            assert "triggerExecution" in query["duration_ms"]
    fraudshop_steps = next(iter(result["systems"]["fraudshop"]["phases"][1]["batches"].values()))["step_ms"]
    assert {"transactions", "alerts", "late_changes"} <= fraudshop_steps.keys()
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")

    # --write-benchmarks: the run as benchmarks/latest.*, and a line of history.
    assert json.loads((benchmarks / "latest.json").read_text()) == result
    assert (benchmarks / "latest.png").read_bytes() == (tmp_path / "bench.png").read_bytes()
    history = [json.loads(line) for line in (benchmarks / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["correct"] is True
