"""`fraudshop job` stopped by a signal takes its job with it: spark-submit's JVM and the Python
driver end too, and the command exits with the job's code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from cassandra.cluster import Session

from fraudshop.config import Config
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.lab.waiting import wait_until
from tests.integration.conftest import TEST_STACK_SETTINGS

pytestmark = pytest.mark.integration


def test_sigterm_to_fraudshop_job_stops_every_process_of_the_job(
    isolated_config: Config, cassandra: Session, tmp_path: Path
) -> None:
    progress_file = tmp_path / "progress.jsonl"
    settings = (
        *TEST_STACK_SETTINGS,
        f"cassandra.keyspace={isolated_config.cassandra.keyspace}",
        f"kafka.topic={isolated_config.kafka.topic}",
        f"kafka.notifications_topic={isolated_config.kafka.notifications_topic}",
        f"job.checkpoint_dir={isolated_config.job.checkpoint_dir}",
        f"job.progress_file={progress_file}",
        "job.trigger_interval=1 second",
    )
    ensure_topic(isolated_config.kafka)
    environment = {name: value for name, value in os.environ.items() if not name.startswith("FRAUDSHOP_")}
    arguments = [sys.executable, "-m", "fraudshop.cli", "job", *(f"--set={setting}" for setting in settings)]
    with open(tmp_path / "job.log", "wb") as output:
        launcher = subprocess.Popen(arguments, env=environment, stdout=output, stderr=subprocess.STDOUT)
    job: list[psutil.Process] = []
    try:

        def job_is_streaming() -> bool:
            """The JVM and the Python driver run, and the stream has reported a micro-batch."""
            assert launcher.poll() is None, f"fraudshop job exited with {launcher.returncode}; see its log"
            job[:] = psutil.Process(launcher.pid).children(recursive=True)
            names = {name for process in job if (name := _name(process))}
            return "java" in names and any(name.startswith("python") for name in names) and progress_file.exists()

        wait_until(job_is_streaming, 300, "the job's JVM, its Python driver and a first micro-batch")
        assert any("detect_fraud.py" in " ".join(_command_line(process)) for process in job)

        launcher.send_signal(signal.SIGTERM)
        # The job's own code: spark-submit's JVM ends on SIGTERM with 128 + 15.
        assert launcher.wait(timeout=60) == 128 + signal.SIGTERM
        _, left = psutil.wait_procs(job, timeout=30)
        assert left == [], f"job processes still running 30 s after the launcher was stopped: {left}"
    finally:  # nothing left consuming, whatever failed
        if launcher.poll() is None:
            launcher.kill()
        for process in job:
            if process.is_running():
                process.kill()


# A child listed a moment ago may have ended since (spark-class's short-lived launcher JVM): it has no name.
def _name(process: psutil.Process) -> str | None:
    try:
        return process.name()
    except psutil.NoSuchProcess:
        return None


def _command_line(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:
        return []
