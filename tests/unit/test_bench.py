"""The benchmark's parts: percentiles, reading progress lines, the figures taken from them
(capacity, fixed cost, recovery), the targets, the expected outcome, the figures of its processes,
the benchmark table of docs/benchmark.md."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from fraudshop.cli import main as fraudshop_main
from fraudshop.lab.bench.ceiling import ceiling_figures
from fraudshop.lab.bench.figures import (
    HEADLINE_KEYS,
    drain,
    fixed_cost,
    recovery_seconds,
    step_medians,
    targets,
    with_ceiling,
)
from fraudshop.lab.bench.plan import BENCHMARK_PAGE
from fraudshop.lab.bench.preload import slices
from fraudshop.lab.bench.processes import cpu_seconds, job_roles, machine, peak_rss_mb
from fraudshop.lab.bench.progress import breakdown, parse_batch, records_done
from fraudshop.lab.bench.publish import (
    BENCH_BEGIN,
    BENCH_END,
    history_line,
    render_table_block,
    source_commit,
    with_table_block,
)
from fraudshop.lab.bench.stats import percentile, summary
from fraudshop.lab.bench.workload import OfferedTransactions, Workload, customer_of, expected_alerts
from fraudshop.lab.waiting import wait_until

REPOSITORY = Path(__file__).resolve().parents[2]


def detection_line(batch_id: int, records: int | None, trigger_ms: int = 2000) -> dict[str, object]:
    return {
        "query": "fraudshop_detect_fraud",
        "batch_id": batch_id,
        "timestamp": f"2026-11-23T10:00:{batch_id:02d}.000Z",
        "num_input_rows": records or 0,
        "duration_ms": {"triggerExecution": trigger_ms, "addBatch": trigger_ms - 100},
        "fraudshop": None
        if records is None
        else {"kafka_records": records, "step_ms": {"parse": 300.0, "write_transactions": 500.0}},
    }


def baseline_line(query: str, batch_id: int, records: int) -> dict[str, object]:
    return {
        "query": query,
        "batch_id": batch_id,
        "timestamp": "2026-11-23T10:00:00.000Z",
        "num_input_rows": records,
        "duration_ms": {"triggerExecution": 1000},
        "fraudshop": None,
    }


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([7.0], 99) == 7.0
    assert summary([]) == {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    assert summary([1.0, 3.0])["mean"] == 2.0


def test_detection_lines_count_the_jobs_kafka_records() -> None:
    batch = parse_batch(detection_line(3, 40))
    assert batch.kafka_records == 40
    assert batch.ended_at == datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    assert batch.step_ms == {"parse": 300.0, "write_transactions": 500.0}
    assert parse_batch(detection_line(4, None)).kafka_records == 0


def test_a_record_is_done_when_every_query_of_the_job_did_it() -> None:
    queries = ("baseline_transaction", "baseline_cust_fraud")
    batches = [parse_batch(baseline_line("baseline_transaction", i, 100)) for i in range(3)]
    assert records_done(batches, queries) == 0
    batches.append(parse_batch(baseline_line("baseline_cust_fraud", 0, 250)))
    assert records_done(batches, queries) == 250


def test_records_done_follows_end_offsets_across_a_batch_whose_progress_line_was_lost() -> None:
    # Killed between batch 1's commit and its progress line: batch 1 has no line, yet batch 2,
    # after the restart, reports how far the query got.
    def line(batch_id: int, records: int, offsets: dict[str, int]) -> dict[str, object]:
        return {**detection_line(batch_id, records), "end_offsets": [{"topic": offsets}]}

    batches = [parse_batch(line(0, 100, {"0": 60, "1": 40})), parse_batch(line(2, 30, {"0": 90, "1": 70}))]
    assert records_done(batches, ("fraudshop_detect_fraud",)) == 160  # not 130, the rows reported
    assert parse_batch(detection_line(3, 5)).consumed is None


def test_breakdown_summarises_batches_with_records_in_the_window() -> None:
    lines = [detection_line(0, 1000, trigger_ms=2000), detection_line(10, 3000, trigger_ms=2000), detection_line(20, 0)]
    batches = [parse_batch(line) for line in lines]
    result = breakdown(batches, datetime(2026, 11, 23, 10, 0, tzinfo=UTC), datetime(2026, 11, 23, 10, 1, tzinfo=UTC))
    query = result["fraudshop_detect_fraud"]
    assert query["batches"] == 2
    assert query["records_per_busy_second"] == 1000.0
    assert query["step_ms"]["parse"]["mean"] == 300.0
    assert query["duration_ms"]["triggerExecution"]["p95"] == 2000.0


def test_expected_alerts_are_the_changed_accounts_transactions() -> None:
    workload = Workload(accounts=30, changed_every=10, seed=1)
    assert workload.changed_accounts() == {"ACC0000000", "ACC0000010", "ACC0000020"}
    offered = OfferedTransactions(workload)
    taken = list(itertools.islice(offered, 300))
    assert [(t["account_no"], t["tranid"]) for t in taken] == offered.keys
    alerts = expected_alerts(offered.keys, workload.changed_accounts())
    flagged = [t for t in taken if t["account_no"] in workload.changed_accounts()]
    assert 0 < len(alerts) == len(flagged) < len(taken)
    assert {customer for customer, _ in alerts} == {customer_of(a) for a in workload.changed_accounts()}


def test_the_change_history_is_seeded_and_never_inside_a_window() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    workload = Workload(accounts=10, changed_every=5, seed=3, history_changes=500)
    history = list(workload.history(now))
    assert history == list(workload.history(now))
    assert len(history) == 500
    assert len({change.account_no for change in history}) == 100  # ten times the transacting accounts
    assert all(now - timedelta(days=365) <= change.last_updated <= now - timedelta(days=2) for change in history)


def test_cpu_and_peak_memory_of_a_process() -> None:
    sum(i * i for i in range(300_000))  # some CPU time of our own
    assert cpu_seconds(os.getpid()) > 0
    peak = peak_rss_mb(os.getpid())
    assert peak is not None and peak >= psutil.Process().memory_info().rss / 1024**2 - 1
    assert machine()["nproc"] == len(os.sched_getaffinity(0))


def test_a_gone_process_has_no_cpu_time_nor_memory() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert cpu_seconds(gone.pid) == 0.0
    assert peak_rss_mb(gone.pid) is None


def test_a_jobs_processes_by_role() -> None:
    # A stand-in job: a Python process (the driver) leading its own group, with a child of another name.
    job = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"],
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(psutil.Process(job.pid).children()) == 1, 10, "the job's child", interval=0.1)
        roles = job_roles(job.pid)
        assert roles == {"job_jvm": [], "python_driver": [job.pid]}  # sleep is neither
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()


def _at(second: float) -> str:
    return (datetime(2026, 11, 23, 10, 0, tzinfo=UTC) + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")


def timed_line(query: str, batch_id: int, started_s: float, records: int, trigger_ms: float) -> dict[str, object]:
    """A progress line of a batch that started ``started_s`` after 10:00 (the baseline's form: Kafka rows only)."""
    return {
        "query": query,
        "batch_id": batch_id,
        "timestamp": _at(started_s),
        "num_input_rows": records,
        "duration_ms": {"triggerExecution": trigger_ms},
        "fraudshop": None,
    }


def _moment(second: float) -> datetime:
    return datetime(2026, 11, 23, 10, 0, tzinfo=UTC) + timedelta(seconds=second)


def test_the_drain_runs_from_the_first_batch_with_records_to_the_batch_that_completed_the_backlog() -> None:
    lines = [
        timed_line("q", 0, 5.0, 100, 1000),  # before the restart: not the backlog's
        timed_line("q", 1, 20.0, 0, 50),  # the restarted job's first batch, empty
        timed_line("q", 2, 22.0, 4000, 3000),
        timed_line("q", 3, 25.0, 4000, 3000),
        timed_line("q", 4, 28.0, 2000, 2000),  # completes 10,000 at 30 s
        timed_line("q", 5, 31.0, 0, 100),
    ]
    figures = drain([parse_batch(line) for line in lines], ["q"], _moment(10), 10_000)
    assert figures["seconds"] == 8.0  # 22 s → 30 s
    assert figures["capacity_txn_per_s"] == 1250.0
    assert figures["batches"] == 3
    assert figures["first_batch_started_at"] == _moment(22).isoformat()


def test_a_drain_of_two_queries_ends_with_the_slower_and_is_none_until_both_finished() -> None:
    lines = [
        timed_line("a", 0, 10.0, 600, 1000),
        timed_line("b", 0, 11.0, 300, 1000),
        timed_line("a", 1, 12.0, 400, 1000),  # a done at 13 s
        timed_line("b", 1, 14.0, 700, 2000),  # b done at 16 s
    ]
    batches = [parse_batch(line) for line in lines]
    assert drain(batches, ["a", "b"], _moment(0), 1000)["seconds"] == 6.0  # 10 s → 16 s
    assert drain(batches[:3], ["a", "b"], _moment(0), 1000)["capacity_txn_per_s"] is None
    assert drain(batches, ["a", "b"], _moment(30), 1000) == {"records": 1000, "batches": 0, "capacity_txn_per_s": None}


def test_the_fixed_cost_is_the_median_of_small_batches_in_the_phase() -> None:
    lines = [
        timed_line("q", 0, 1.0, 40, 900),  # before the phase
        timed_line("q", 1, 10.0, 40, 300),
        timed_line("q", 2, 12.0, 0, 50),  # no records: not a batch of work
        timed_line("q", 3, 14.0, 100, 500),
        timed_line("q", 4, 16.0, 101, 5000),  # over 100 records
        timed_line("q", 5, 18.0, 1, 400),
        timed_line("q", 6, 40.0, 20, 900),  # after the phase
    ]
    cost = fixed_cost([parse_batch(line) for line in lines], ["q"], _moment(10), _moment(30))
    assert cost["batch_fixed_cost_s"] == 0.4  # median of 0.3, 0.5, 0.4
    assert cost["by_query"] == {"q": {"batches": 3, "median_s": 0.4}}


def test_a_jobs_fixed_cost_is_its_slowest_querys_and_none_without_small_batches() -> None:
    lines = [timed_line("a", 0, 1.0, 10, 200), timed_line("b", 0, 1.0, 10, 700), timed_line("b", 1, 3.0, 10, 900)]
    batches = [parse_batch(line) for line in lines]
    assert fixed_cost(batches, ["a", "b"], _moment(0), _moment(10))["batch_fixed_cost_s"] == 0.8
    assert fixed_cost(batches, ["a", "c"], _moment(0), _moment(10))["batch_fixed_cost_s"] is None


def test_recovery_ends_with_the_first_batch_with_records_that_started_after_the_kill() -> None:
    lines = [
        timed_line("q", 7, 9.0, 50, 1500),  # started before the kill (at 10 s), even if it ended after
        timed_line("q", 8, 21.0, 0, 100),  # the restarted job's first batch: no records yet
        timed_line("q", 9, 23.0, 400, 1500),  # ends 24.5 s
        timed_line("q", 10, 25.0, 50, 500),
    ]
    batches = [parse_batch(line) for line in lines]
    assert recovery_seconds(batches, ["q"], _moment(10)) == 14.5
    assert recovery_seconds(batches[:2], ["q"], _moment(10)) is None
    two = [*batches, parse_batch(timed_line("r", 3, 26.0, 10, 1000))]
    assert recovery_seconds(two, ["q", "r"], _moment(10)) == 17.0


def test_targets_are_met_only_by_measured_values_within_their_bounds() -> None:
    headline_figures = {
        "capacity_ratio": 0.6,
        "latency_s": {"2000": {"p95": 1.4, "p99": 2.1}, "200": {"p95": 1.0}},
        "batch_fixed_cost_s": None,
        "recovery_s": 15.5,
    }
    met = {name: figures["met"] for name, figures in targets(headline_figures).items()}
    assert met == {
        "capacity_ratio": True,
        "latency_2000_p95_s": True,
        "latency_2000_p99_s": False,
        "latency_200_p95_s": True,
        "batch_fixed_cost_s": False,  # not measured
        "recovery_s": False,
    }
    assert targets(headline_figures)["capacity_ratio"] == {"target": ">= 0.6", "value": 0.6, "met": True}


def test_capacity_ratio_is_over_the_runs_ceiling() -> None:
    assert with_ceiling({"capacity_txn_per_s": 15_000.0}, 20_000.0)["capacity_ratio"] == 0.75
    assert with_ceiling({"capacity_txn_per_s": 15_000.0}, None)["capacity_ratio"] is None
    assert with_ceiling({"capacity_txn_per_s": None}, 20_000.0)["capacity_ratio"] is None


def test_ceiling_figures_check_that_every_row_written_is_stored() -> None:
    written = {"rows": 400_000, "rows_stored": 400_000, "build_seconds": 3.0, "write_seconds": 20.0}
    figures = ceiling_figures(written, Path("job.log"))
    assert figures["ceiling_rows_per_s"] == 20_000.0
    assert figures["correctness"]["passed"] is True
    assert ceiling_figures({**written, "rows_stored": 399_999}, Path("job.log"))["correctness"]["passed"] is False


def test_the_backlog_is_cut_into_contiguous_slices_of_near_equal_size() -> None:
    records = [(str(i).encode(), b"v") for i in range(10)]
    parts = slices(records, 3)
    assert [len(part) for part in parts] == [4, 3, 3]
    assert [record for part in parts for record in part] == records
    assert len(slices(records[:2], 4)) == 2  # no empty slice


def _result(**overrides: object) -> dict[str, Any]:
    """A bench.json as a full run writes it, cut to what the benchmark table and the history read."""
    latency = {"2000": {"p50": 0.8, "p95": 1.2, "p99": 1.9}, "200": {"p50": 0.5, "p95": 0.9, "p99": 1.1}}
    ours = {
        "capacity_txn_per_s": 14_000.0,
        "ceiling_rows_per_s": 21_000.0,
        "capacity_ratio": 0.667,
        "latency_s": latency,
        "batch_fixed_cost_s": 0.42,
        "recovery_s": 9.5,
        "step_ms_p50": {
            "2000": {"rules": 910.0, "similarity": 820.0, "alerts": 640.5, "transactions": 700.0},
            "200": None,
        },
    }
    result: dict[str, Any] = {
        "started_at": "2026-11-28T21:00:00+00:00",
        **ours,
        "baseline": {**ours, "capacity_txn_per_s": 3000.0, "capacity_ratio": 0.143, "recovery_s": 30.0},
        "targets": targets(ours),
        "correctness_passed": True,
        "machine": {"nproc": 2, "memory_gib": 23.5},
        "commit": {"sha": "0123456789abcdef", "dirty": False},
        "plan": {"backlog": 500_000},
        "systems": {
            "ceiling": {"rows": 500_000, "correctness": {"rows_written": 500_000, "rows_stored": 500_000}},
            **{
                name: {
                    "correctness": {"passed": True, "transactions_stored": 530_000, "alerts_stored": 26_500},
                }
                for name in ("fraudshop", "baseline")
            },
        },
    }
    return {**result, **overrides}


def test_the_benchmark_table_shows_the_runs_figures_and_targets() -> None:
    block = render_table_block(_result())
    lines = block.splitlines()
    assert lines[0].startswith("Figures of `benchmarks/latest.json` (run of 2026-11-28 21:00 UTC, commit 0123456;")
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    assert rows["capacity: a backlog of 500,000 transactions drained (txn/s)"][:2] == ["14,000", "3,000"]
    assert rows["capacity / ceiling"] == ["0.67", "0.14", "≥ 0.6: met |"]
    assert rows["event→alert p50 / p95 / p99 at 2,000 txn/s offered"][0] == "0.80 / 1.20 / 1.90 s"
    assert rows["event→alert p50 / p95 / p99 at 2,000 txn/s offered"][2] == "≤ 1.5 s (p95): met, ≤ 2 s (p99): met |"
    assert rows["recovery: kill -9 to the next completed batch"] == ["9.5 s", "30.0 s", "≤ 15 s: met |"]
    assert rows["correctness over everything sent"][0] == "530,000 transactions, 26,500 alerts, exact"
    cost = "cost per batch at {} txn/s (median ms): rules / similarity / profile-change rule / transactions"
    assert rows[cost.format("2,000")][0] == "910 / 820 / 640 / 700"
    assert rows[cost.format("200")][0] == "-"
    # A run that did not measure a figure shows it as missing, never as 0.
    partial = render_table_block(_result(recovery_s=None, targets={}))
    assert "| recovery: kill -9 to the next completed batch | - | 30.0 s | ≤ 15 s: - |" in partial


def test_step_costs_are_the_medians_of_the_jobs_steps_and_none_for_the_baseline() -> None:
    steps = {"rules": {"p50": 12.0}, "alerts": {"p50": 30.5}}
    assert step_medians({"fraudshop_detect_fraud": {"step_ms": steps}}) == {
        "rules": 12.0,
        "similarity": None,  # a run before the similarity step
        "alerts": 30.5,
        "transactions": None,
    }
    assert step_medians({"baseline_a": {"step_ms": {}}, "baseline_b": {"step_ms": {}}}) is None


def test_the_table_block_is_replaced_between_its_markers_only() -> None:
    page = "# Title\nprose\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\nmore prose\n"
    assert with_table_block(page, "new table\n") == (
        "# Title\nprose\n<!-- bench:begin -->\nnew table\n<!-- bench:end -->\nmore prose\n"
    )
    with pytest.raises(ValueError, match="bench:begin"):
        with_table_block("no markers\n", "new table\n")


def test_the_docs_benchmark_table_is_the_rendering_of_the_committed_latest_json() -> None:
    """docs/benchmark.md cannot drift from benchmarks/latest.json: `fraudshop bench --update-readme` fixes it."""
    page = (REPOSITORY / BENCHMARK_PAGE).read_text()
    latest = json.loads((REPOSITORY / "benchmarks" / "latest.json").read_text())
    assert page.count(BENCH_BEGIN) == page.count(BENCH_END) == 1
    assert with_table_block(page, render_table_block(latest)) == page


def test_a_history_line_summarises_a_run_on_one_line() -> None:
    line = history_line(_result())
    assert line["date"] == "2026-11-28T21:00:00+00:00"
    assert line["capacity_ratio"] == 0.667
    assert line["baseline"]["capacity_txn_per_s"] == 3000.0
    assert line["targets_met"]["recovery_s"] is True
    assert line["correct"] is True
    assert "\n" not in json.dumps(line)


def test_the_commit_of_a_checkout_and_of_no_checkout(tmp_path: Path) -> None:
    assert source_commit(tmp_path) is None
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert source_commit(tmp_path) == {"sha": sha, "dirty": False}
    (tmp_path / "f").write_text("2")
    assert source_commit(tmp_path) == {"sha": sha, "dirty": True}


def test_bench_update_readme_alone_rewrites_the_docs_table_from_benchmarks_latest_without_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "latest.json").write_text(json.dumps(_result()))
    old_page = f"# Benchmark\n{BENCH_BEGIN}\nold\n{BENCH_END}\nprose\n"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "benchmark.md").write_text(old_page)
    # A README that still had the markers is left alone: the table lives in docs/benchmark.md.
    (tmp_path / "README.md").write_text(old_page)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("fraudshop.lab.stack.stack_up", lambda config: pytest.fail("no run without a run option"))
    assert fraudshop_main(["bench", "--update-readme"]) == 0
    page = (tmp_path / "docs" / "benchmark.md").read_text()
    assert page == f"# Benchmark\n{BENCH_BEGIN}\n{render_table_block(_result())}{BENCH_END}\nprose\n"
    assert (tmp_path / "README.md").read_text() == old_page
    # --readme, the old name of --benchmark-page, still names the page to edit.
    (tmp_path / "other.md").write_text(old_page)
    assert fraudshop_main(["bench", "--update-readme", "--readme", "other.md"]) == 0
    assert (tmp_path / "other.md").read_text() == page


def test_bench_prints_the_headline_of_a_run_of_the_ceiling_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What run_bench returns when only the ceiling ran: fraudshop's figures are None.
    result = {
        **{key: None for key in HEADLINE_KEYS},
        "ceiling_rows_per_s": 21_000.0,
        "baseline": None,
        "targets": targets({}),
        "correctness_passed": True,
    }
    monkeypatch.setattr("fraudshop.lab.stack.stack_up", lambda config: None)
    monkeypatch.setattr("fraudshop.lab.bench.run.run_bench", lambda config, plan, output: result)
    assert fraudshop_main(["bench", "--systems", "ceiling", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"ceiling_rows_per_s\s+21000.00", out)
    assert re.search(r"capacity_ratio\s+>= 0.6\s+False", out)
