"""The benchmark's parts: percentiles, reading progress lines, the expected outcome, the figures
of its processes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psutil

from fraudshop.lab.bench.processes import cpu_seconds, job_roles, machine, peak_rss_mb
from fraudshop.lab.bench.progress import breakdown, parse_batch, records_done
from fraudshop.lab.bench.stats import percentile, summary
from fraudshop.lab.bench.workload import OfferedTransactions, Workload, customer_of, expected_alerts
from fraudshop.lab.waiting import wait_until


def detection_line(batch_id: int, records: int | None, trigger_ms: int = 2000) -> dict[str, object]:
    return {
        "query": "fraudshop_detect_fraud",
        "batch_id": batch_id,
        "timestamp": f"2026-11-23T10:00:{batch_id:02d}.000Z",
        "num_input_rows": (records or 0) + 2,  # plus the job's tick rows
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


def test_detection_lines_count_kafka_records_not_tick_rows() -> None:
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
    assert machine()["cpus"] == os.cpu_count()


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
