"""Launch a spark-submit job of ``jobs/`` on this machine: the detection job (local demo, tests,
`fraudshop job`) or the benchmark's baseline."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from fraudshop.config import Config, as_environment
from fraudshop.spark_session import spark_submit_command

DETECTION_JOB = "detect_fraud"
#: The original proofshop's design, run by `fraudshop bench` beside the detection job.
BASELINE_JOB = "proofshop_baseline"


def spark_submit_executable() -> str:
    """``$SPARK_HOME/bin/spark-submit``, else the one pip installed beside this Python, else PATH's."""
    candidates = []
    if os.environ.get("SPARK_HOME"):
        candidates.append(Path(os.environ["SPARK_HOME"]) / "bin" / "spark-submit")
    candidates.append(Path(sys.executable).parent / "spark-submit")
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("spark-submit")
    if found is None:
        raise FileNotFoundError("spark-submit not found: install fraudshop (it brings pyspark) or set SPARK_HOME")
    return found


def job_command(config: Config, job: str = DETECTION_JOB) -> list[str]:
    return spark_submit_command(config, job, spark_submit_executable())


def job_environment(config: Config) -> dict[str, str]:
    """The job's environment: this config (secrets never on the command line) and this Python."""
    environment = {**os.environ, **as_environment(config)}
    environment["PYSPARK_PYTHON"] = environment["PYSPARK_DRIVER_PYTHON"] = sys.executable
    if config.job.spark_master.startswith("local"):
        environment["SPARK_LOCAL_IP"] = "127.0.0.1"  # the local stack never listens beyond loopback
    return environment


def start_job(config: Config, output: IO[bytes], job: str = DETECTION_JOB) -> subprocess.Popen[bytes]:
    """Start ``jobs/<job>.py`` in the background, its output to ``output``; stop it with :func:`stop_job`."""
    return subprocess.Popen(
        job_command(config, job),
        env=job_environment(config),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def run_job(config: Config) -> int:
    """Run the job in the foreground until it stops; return its exit code."""
    return subprocess.call(job_command(config), env=job_environment(config))


def stop_job(job: subprocess.Popen[bytes], grace_seconds: float = 60) -> int:
    """SIGTERM the job's whole process group (spark-submit's JVM and its Python driver), SIGKILL
    after ``grace_seconds``; return its exit code."""
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGTERM)
        try:
            return job.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
    return job.wait()
