"""The ceiling system: the Spark batch job of ceiling_write.py, run with the detection job's
spark-submit settings on a scratch keyspace, and its figures."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fraudshop.config import Config
from fraudshop.config.resources import packaged_file
from fraudshop.jobs.launcher import start_job, stop_job
from fraudshop.lab.bench.ceiling_write import ACCOUNTS_VARIABLE, FIGURES_VARIABLE, ROWS_VARIABLE
from fraudshop.lab.bench.figures import CEILING_RATE
from fraudshop.lab.bench.plan import BenchPlan
from fraudshop.lab.console import step
from fraudshop.lab.scratch import scratch_space
from fraudshop.lab.waiting import wait_until

log = logging.getLogger(__name__)

CEILING_JOB = packaged_file(__package__ or "fraudshop.lab.bench", "ceiling_write.py")


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` set in this process's environment, which start_job hands down to the job."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ceiling_figures(written: Mapping[str, Any], job_log: Path) -> dict[str, Any]:
    """The ceiling's figures from what its job wrote: rows per second of the one write, and whether
    exactly the rows written are stored."""
    rows, stored = int(written["rows"]), int(written["rows_stored"])
    return {
        "job": CEILING_JOB.stem,
        "job_log": str(job_log),
        CEILING_RATE: round(rows / written["write_seconds"], 1),
        "rows": rows,
        "warmup_rows": int(written.get("warmup_rows", 0)),
        "build_seconds": round(written["build_seconds"], 2),
        "write_seconds": round(written["write_seconds"], 2),
        "correctness": {"rows_written": rows, "rows_stored": stored, "passed": rows == stored > 0},
    }


def run_ceiling(base_config: Config, plan: BenchPlan, work_dir: Path) -> dict[str, Any]:
    """Run the ceiling job on a scratch keyspace of as many rows as the backlog; return its figures."""
    with scratch_space(base_config, "bench_ceiling", work_dir, keep=plan.keep) as (config, _):
        figures_file = work_dir / "ceiling.json"
        figures_file.unlink(missing_ok=True)
        job_log = work_dir / "job.log"
        variables = {
            ROWS_VARIABLE: str(plan.backlog),
            ACCOUNTS_VARIABLE: str(plan.workload.accounts),
            FIGURES_VARIABLE: str(figures_file),
        }
        with step(f"ceiling: one connector write of {plan.backlog:,} rows") as shown:
            with _environment(variables), open(job_log, "ab") as output:
                job = start_job(config, output, CEILING_JOB)
            started = time.monotonic()

            def finished() -> bool:
                shown.update(
                    f"ceiling: one connector write of {plan.backlog:,} rows ({time.monotonic() - started:.0f} s)"
                )
                return job.poll() is not None

            try:
                wait_until(finished, plan.drain_timeout_seconds, "the ceiling job", interval=0.5)
            finally:
                stop_job(job)
        if job.returncode != 0 or not figures_file.exists():
            raise RuntimeError(f"ceiling: the job failed (exit {job.returncode}); see {job_log}")
        figures = ceiling_figures(json.loads(figures_file.read_text()), job_log)
    log.info("ceiling: %s rows/s (%s)", figures[CEILING_RATE], figures["correctness"])
    return figures
